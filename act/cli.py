"""The `act` command (also `python -m act`)."""
from __future__ import annotations

import argparse
import sys

from act.errors import ActError

EXAMPLES = """examples:
  act train                                         the embedded demo: digits, 40% symmetric noise, tinycnn, CPU
  act train --config configs/cifar100n/sym20.yaml data.root=/data/cifar100
  act train --config configs/cifar100n/sym20.yaml data.root=/data/cifar100 method.ablation.mining=false
  act train --config configs/web/aircraft.yaml data.root=/data/web-aircraft model.pretrained=/weights/resnet50.pth
  act train --resume runs/cifar100n-symm20-act-20261124-120000
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="act", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="ACT (Asymmetric Co-Training) for learning with noisy labels: a fast trainer.",
        epilog="commands:\n  train    train ACT (or the Standard baseline); `act train --help` lists every config key\n\n" + EXAMPLES)
    sub = parser.add_subparsers(dest="command", metavar="command")
    from act.config import describe_keys

    train = sub.add_parser(
        "train", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="train ACT (or the Standard baseline) and write a run folder",
        description="Train ACT from a YAML config plus dotted key=value overrides. Without --config, "
                    "the embedded demo runs (scikit-learn's digits, 40% symmetric noise, tinycnn, CPU, ~1 min).",
        epilog="config keys (key = default):\n" + describe_keys() + "\n\n" + EXAMPLES)
    train.add_argument("--config", "-c", metavar="FILE", help="YAML config (see configs/); default: the embedded demo")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped or killed run from its last completed epoch")
    train.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. optim.lr=0.02 data.root=/data")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return run_command(args)
    except ActError as exc:
        print(f"act: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nact: interrupted; the last completed epoch is checkpointed: continue with "
              "`act train --resume RUN_DIR`", file=sys.stderr)
        return 130


def run_command(args: argparse.Namespace) -> int:
    from act import train as training
    from act.config import load_config

    if args.resume:
        if args.config:
            raise ActError("--resume takes the config from the run folder; drop --config")
        training.resume(args.resume, args.overrides)
    else:
        training.train(load_config(args.config, args.overrides))
    return 0


if __name__ == "__main__":
    sys.exit(main())
