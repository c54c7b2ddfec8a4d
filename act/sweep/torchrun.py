"""torchrun for a sweep's cell of several processes (act/sweep/executors.py): PyTorch's
`torch.distributed.run`, the same options, but a stop by a signal is an exit like act train's.

SLURM stops a job (requeue, preemption, time limit, scancel) by sending SIGTERM to every process of
it, torchrun's agent included; torchrun then stops its processes (act train saves its last epoch
and says so) and ends with a traceback of its own and exit code 1, which would read as a failure.
Here it ends with one line and 128 + the signal's number (143 for SIGTERM), which act sweep reads
as a stopped run (act/sweep/state.py STOPPED) that continues from its checkpoint.
"""
from __future__ import annotations

import sys


def main() -> int:
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.run import main as torchrun

    try:
        torchrun()
    except SignalException as exc:
        print(f"torchrun: stopped by {exc.sigval.name}", file=sys.stderr, flush=True)
        return 128 + int(exc.sigval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
