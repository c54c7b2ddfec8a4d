"""The `act` command (also `python -m act`)."""
from __future__ import annotations

import argparse
import errno
import os
import signal
import sys

from act.errors import ActError, Terminated

EXAMPLES = """examples:
  act train                                         the embedded demo: digits, 40% symmetric noise, tinycnn, CPU
  act train --print-config --config configs/cifar100n/sym20.yaml data.root=/data/cifar-100-python    see before you spend
  act train --config configs/cifar100n/sym20.yaml data.root=/data/cifar-100-python
  act train --config configs/cifar100n/sym20.yaml data.root=/data/cifar-100-python method.ablation.mining=false
  act train --config configs/web/aircraft.yaml data.root=/data/web-aircraft model.pretrained=/weights/resnet50.pth
  act train --resume runs/cifar100n-sym20-act-20261124-120000
  act train --pack sweeps/table1/packs/cifar100n-sym20-seed0+3.yaml
  act convert --format dali --config configs/web/aircraft.yaml data.root=/data/web-aircraft --out /fast/aircraft-dali
  act train --config configs/web/aircraft.yaml pipeline.path=/fast/aircraft-dali model.pretrained=/w/resnet50.pth
  act sweep configs/sweeps/cifar-table1.yaml --out sweeps/table1 data.root=/data/cifar-100-python
"""


PACK_FILE = """pack file (act train --pack FILE; act sweep --pack writes them):
  runs:
    - config: base.yaml        # optional (absent: the embedded demo); relative to the pack file
      overrides: [run.seed=0, run.out_dir=/out/runs, run.name=cell-a]   # as on the command line
    - ...
  Each run's config is --config CONFIG with its overrides; its folder run.out_dir/run.name (run.name is
  required). A run whose folder holds config.yaml is resumed (as --resume), the others start. The runs
  may differ only in run.seed and the close-set noise (data.noise.type, closeset_ratio, seed, or CIFAR-N's
  human label set: data.noise.file, labels, with as many classes); models
  sevencnn, resnet32, tinycnn. One process trains them in one step per batch; a run that diverges stops alone.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="act", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="ACT (Asymmetric Co-Training) for learning with noisy labels: a fast trainer.",
        epilog="commands:\n  train    train ACT (or the Standard baseline); `act train --help` lists every config key\n"
               "  convert  write an image-file data set once for the DALI or FFCV pipeline\n"
               "  report   runs grouped over seeds in the paper's tables, beside its figures, with curves\n"
               "  issues   the training labels a run judged wrong, ranked\n"
               "  sweep    a paper table in one command: a sweep file's runs, resumable, reported at the end\n\n"
               + EXAMPLES)
    parser.add_argument("--version", action="store_true", help="print act's version (and torch's) and exit")
    sub = parser.add_subparsers(dest="command", metavar="command")
    from act.config import describe_keys

    train = sub.add_parser(
        "train", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="train ACT (or the Standard baseline) and write a run folder",
        description="Train ACT from a YAML config plus dotted key=value overrides. Without --config, "
                    "the embedded demo runs (scikit-learn's digits, 40% symmetric noise, tinycnn, CPU, ~20 s), "
                    "and key=value overrides apply to the demo: the run's first line names the config it "
                    "builds on, and the configs of the paper's data sets are in configs/.",
        epilog=PACK_FILE + "\nconfig keys (key = default, the paper's CIFAR-100N setting; [demo: value] where "
                           "the embedded demo sets another):\n" + describe_keys() + "\n\n" + EXAMPLES)
    train.add_argument("--config", "-c", metavar="FILE", help="YAML config (see configs/); default: the embedded demo")
    train.add_argument("--print-config", action="store_true",
                       help="print the resolved config (YAML, as the run folder's config.yaml) and check that its "
                            "data root and weights file are there, then exit; creates nothing")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped or killed run from its last completed epoch")
    train.add_argument("--pack", metavar="FILE", help="train the runs a pack file lists as one packed process, each "
                                                      "in its own run folder (see below); again: continues them")
    train.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. optim.lr=0.02 data.root=/data")

    convert = sub.add_parser(
        "convert", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="write an image-file data set once in a fast pipeline's format",
        description="Read the image-file data set named by the config's data.* keys and write it to --out in "
                    "--format (dali: re-encoded JPEGs, DALI file lists, labels, a manifest with checksums; "
                    "ffcv: the same plus train.beton and test.beton). "
                    "Train from it with pipeline.path=OUT. The output appears only when complete.",
        epilog=EXAMPLES)
    convert.add_argument("--format", required=True, choices=["dali", "ffcv"],
                         help="dali: re-encoded JPEGs + DALI file lists; ffcv: the same plus FFCV .beton files")
    convert.add_argument("--out", required=True, metavar="DIR", help="output folder (refused if it exists, unless --force)")
    convert.add_argument("--config", "-c", metavar="FILE", help="YAML config naming the data set")
    convert.add_argument("--force", action="store_true", help="replace an earlier act convert output at --out (never a folder act convert did not write)")
    convert.add_argument("--skip-bad", action="store_true", help="leave unreadable images out (listed in the manifest) instead of stopping")
    convert.add_argument("--max-side", type=int, default=0, metavar="N", help="shrink images whose longer side exceeds N px, at least the resize side (default: twice it)")
    convert.add_argument("--quality", type=int, default=90, metavar="Q", help="JPEG quality, 1..95 (default 90)")
    convert.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. data.root=/data/web-bird")

    rep = sub.add_parser(
        "report", help="runs grouped over seeds in the paper's tables, beside its figures, with curves",
        description="Find run folders under the paths and group those that differ only in run.seed (and output "
                    "paths). Table 1: the RTM's last-10 test accuracy, mean +- sample std over seeds (n), per data "
                    "set and noise (rows, the paper's order) and method or ablation (columns), beside the paper's "
                    "figure and the difference. Table 2: final selection precision/recall/F1 and median seconds "
                    "per epoch. Table 3: every run folder and its state (finished, running, stopped, diverged, "
                    "broken); only finished runs enter the means.")
    rep.add_argument("runs", nargs="+", metavar="PATH", help="run folders, or folders holding run folders at any depth")
    rep.add_argument("--out", metavar="DIR", help="also write report.<format> there (and runs.csv for csv), and "
                                                  "one curves PNG per group (needs matplotlib: the [plots] extra)")
    rep.add_argument("--format", choices=["md", "csv", "json"], default="md",
                     help="md (default), csv or json: each group's data set, noise, method, switches and seeds as data")
    rep.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                     help="only the runs whose provenance.json has this value (again: all of them; the same key "
                          "again: any of its values), e.g. torch=2.14.1, host=gpu1, dirty=false, cuda=null")
    rep.add_argument("--by", metavar="KEY", help="split each group by a provenance key, e.g. host, torch, commit")
    rep.add_argument("--force", action="store_true", help="replace files in --out that act report did not write "
                                                          "(never a run's own files)")

    iss = sub.add_parser(
        "issues", help="the training labels a run judged wrong, ranked",
        description="List the training samples a finished (or checkpointed) ACT run judged mislabelled: "
                    "score = 1 - (times selected / robust epochs + the bank's EMA probability of the given "
                    "label) / 2, listed when above 0.5, highest first; with the suggested label (the EMA's "
                    "argmax). Where the true labels are known (synthetic noise) it prints the list's "
                    "precision and recall against the flipped labels, overall and in the top K.")
    iss.add_argument("run", metavar="RUN_DIR", help="a run folder")
    iss.add_argument("--top", type=int, default=20, metavar="K", help="rows to print, and the K of precision at K (default 20)")
    iss.add_argument("--out", metavar="FILE.csv", help="write every listed sample to this CSV file, with "
                                                      "label_quality (lower: more likely wrong) and is_label_issue")
    iss.add_argument("--all", action="store_true", help="--out writes every training sample, listed ones first")
    iss.add_argument("--force", action="store_true", help="replace a --out file act issues did not write "
                                                          "(never a run's own files)")
    from act.commands.sweep import add_parser as add_sweep

    add_sweep(sub)
    return parser


# OSErrors a user's paths or machine cause (a full disk, a read-only or forbidden folder, a file
# where a folder is expected): one line naming the path. Any other OSError is a bug: traceback.
USER_OS_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENAMETOOLONG,
                  errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.EIO}


def terminate(signum, frame) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    open_standard_streams()
    parser = build_parser()
    args = parse_args(parser, argv)
    if args.version:  # read when asked: torch's installed metadata takes a moment to find
        print(version())
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    stdout = PipeSafeStdout(sys.stdout)
    previous = signal.signal(signal.SIGTERM, terminate)  # under torchrun, act/step/distributed.py `join` replaces it
    try:
        return run_command(args, stdout)
    except ActError as exc:  # one line per problem where several were found at once (act/run/preflight.py)
        for line in str(exc).splitlines():
            print(f"act: error: {line}", file=sys.stderr)
        exit_now_if_lost(2)
        return 2
    except OSError as exc:
        if exc.errno not in USER_OS_ERRORS:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"act: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        how, code = ("terminated (SIGTERM)", 143) if isinstance(exc, Terminated) else ("interrupted", 130)
        if args.command == "convert":
            print(f"\nact: {how}; {args.out} is as it was before this conversion", file=sys.stderr)
        else:  # a training loop says which epoch its folder holds (act/run/loop.py `loop`)
            print(f"\nact: {how}{'; ' + str(exc) if str(exc) else ''}", file=sys.stderr)
        return code
    finally:
        signal.signal(signal.SIGTERM, previous)
        stdout.flush()


def exit_now_if_lost(code: int) -> None:
    """A process of a torchrun run whose peer died ends here, its line written: the broken process
    group's teardown at exit may abort it (SIGABRT), which would hide its exit code."""
    distributed = sys.modules.get("act.step.distributed")
    if distributed is not None and distributed.LOST:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def open_standard_streams() -> None:
    """A standard stream the caller closed (`act train >&-`) is opened on /dev/null, so no file act
    opens later takes its number (and with it what libraries write there); a closed stdout sends
    the console to stderr, and says so there."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free number: `fd`, as the lower ones are open
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")
    if sys.stdout is None:
        sys.stdout = sys.stderr
        print("act: stdout is closed; the console goes to stderr", file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):  # a file name the locale cannot encode is shown escaped, not a crash
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """argparse, but key=value overrides (and report's folders) may stand on both sides of an
    option (`act train a=1 --config f.yaml b=2`); they keep their order."""
    args, extra = parser.parse_known_args(argv)
    options = [item for item in extra if item.startswith("-")]
    if options or (extra and args.command not in ("train", "convert", "report", "sweep")):
        parser.error(f"unrecognized arguments: {' '.join(options or extra)}")
    if args.command == "report":
        args.runs += extra
    elif extra:
        args.overrides += extra
    return args


class PipeSafeStdout:
    """stdout that outlives its reader: when `act train | head -1` closes the pipe, output goes to
    /dev/null and training goes on, instead of a BrokenPipeError killing the run."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            self.discard()
            return len(text)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            self.discard()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def discard(self) -> None:
        """Point the stream's file descriptor at /dev/null, so its buffer and later writes
        (including Python's flush at exit) go nowhere instead of failing."""
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self.stream.fileno())
        os.close(devnull)


def run_command(args: argparse.Namespace, stdout=None) -> int:
    stdout = sys.stdout if stdout is None else stdout  # the stdout of the call, not of the import
    from act.config import load_config

    if args.command == "report":
        from act.commands.report import report

        print(report(args.runs, args.format, args.out, force=args.force, where=args.where, by=args.by), file=stdout,
              end="")
        return 0
    if args.command == "issues":
        return list_issues(args, stdout)
    if args.command == "sweep":
        from act.commands.sweep import sweep_command

        return sweep_command(args, stdout)
    if args.command == "convert":
        from act.commands.convert import convert

        manifest = convert(load_config(args.config, args.overrides), args.format, args.out, force=args.force,
                           skip_bad=args.skip_bad, max_side=args.max_side, quality=args.quality)
        bad = f", {len(manifest['bad_files'])} unreadable images left out" if manifest["bad_files"] else ""
        print(f"wrote {args.out}: {manifest['counts']['train']} train and {manifest['counts']['test']} test images{bad}",
              file=stdout)
        return 0
    if args.print_config and (args.pack or args.resume):
        raise ActError(f"--print-config prints the config of a new run (--config and key=value); drop "
                       f"{'--pack' if args.pack else '--resume'}")
    if args.pack:
        if args.config or args.resume or args.overrides:
            raise ActError("--pack takes each run's config and overrides from the pack file; drop --config, "
                           "--resume and key=value")
        from act.pack.run import train_pack

        train_pack(args.pack, out=stdout)
        return 0
    if args.resume:
        if args.config:
            raise ActError("--resume takes the config from the run folder; drop --config")
        from act.run import loop as training  # here: it imports torch, which the other commands do without

        training.resume(args.resume, args.overrides, out=stdout)
        return 0
    cfg = load_config(args.config, args.overrides)
    if args.print_config:
        return print_config(cfg, base_line(args.config, args.overrides, cfg), stdout)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, the first process alone prints (as the run's console)
        print(base_line(args.config, args.overrides, cfg), file=stdout, flush=True)
    from act.run import loop as training

    training.train(cfg, out=stdout)
    return 0


def base_line(config: str | None, overrides: list[str], cfg) -> str:
    """A new run's first line: the config it builds on, a file or the embedded demo. On the demo
    with another data set, the keys not given stay the demo's (tinycnn, the CPU, 40 epochs), so the
    line names the shipped config of that data set's published runs where there is one."""
    from act.config import base_config
    from act.datasets import spec_of

    given = f" and {len(overrides)} override{'s' * (len(overrides) != 1)}" if overrides else ""
    if config:
        return f"act train: config = {config}{given}"
    demo = base_config()
    line = (f"act train: config = the embedded demo ({demo.data.name}, {demo.model.name}, {demo.run.device.upper()}, "
            f"{demo.optim.epochs} epochs){given}")
    if cfg.data.name == demo.data.name:
        return line
    spec = spec_of(cfg.data.name)
    if spec.config:
        return f"{line}; for {spec.title} use --config {spec.config}"
    return f"{line}; the keys not given are the demo's (`act train --help` shows both bases)"


def print_config(cfg, base: str, stdout) -> int:
    """`act train --print-config`: the resolved config as the run folder's config.yaml holds it, then
    the preflight's verdict (as YAML comments); creates nothing. A problem is an ActError (exit 2)."""
    from act.config import dump_yaml
    from act.run.preflight import preflight, verdict

    print(f"# {base}\n{dump_yaml(cfg)}", file=stdout, end="")
    print(f"# {verdict(preflight({'': cfg}))}", file=stdout)
    return 0


def version() -> str:
    """`act --version`: act's, and torch's as pip installed it, read without importing torch."""
    from importlib import metadata

    import act

    try:
        return f"act {act.__version__} (torch {metadata.version('torch')})"
    except metadata.PackageNotFoundError:
        return f"act {act.__version__}"


def list_issues(args: argparse.Namespace, stdout) -> int:
    from pathlib import Path

    from act.commands import issues as label_issues

    if args.top < 1:
        raise ActError(f"--top {args.top} must be at least 1")
    if args.all and not args.out:
        raise ActError("--all says what --out writes (every training sample); give --out FILE.csv too")
    issues = label_issues.find_issues(args.run)
    if args.out:  # first: a path that cannot be written stops before anything is printed
        label_issues.write_csv(issues, Path(args.out), force=args.force, every=args.all)
    print(label_issues.describe(issues, Path(args.run), args.top), file=stdout)
    if args.out:
        print(f"wrote {len(issues.ranking if args.all else issues.order)} rows to {args.out}", file=stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
