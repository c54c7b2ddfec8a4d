import sys

from act.cli import main

sys.exit(main())
