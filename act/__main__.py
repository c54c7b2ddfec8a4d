import sys

from act.commands.cli import main

sys.exit(main())
