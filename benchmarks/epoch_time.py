"""Real ACT epochs (warm-up and robust), timed, against the public code's 40 s/epoch.

    python -m benchmarks.epoch_time --config configs/cifar100n/sym20.yaml [--root DIR] \
        [--warmup-epochs 2 --robust-epochs 3] [key=value ...]

Without --root the data are random uint8 arrays (--image-size, 32 by default: CIFAR-shaped)
with the config's class count. Reports the median seconds of the warm-up and of the robust
epochs (train + test; the first epoch of each phase is left out of the median when there are
more: it holds compile time), images/s, and on CUDA the GPU utilisation sampled by nvidia-smi
while the epochs run. Appends one JSON line per measurement to benchmarks/results/epoch_time.jsonl.

Under torchrun (`torchrun --nproc_per_node N -m benchmarks.epoch_time ...`) every process trains
its share and rank 0 reports images/s in all and per process, and the scaling efficiency:
N-process images/s over N x the images/s of the latest 1-process record of the same command
on the same device (run it once without torchrun first). On the CPU (gloo) this shows only
that the command works: the processes share the same cores. Under torchrun it also times the robust step alone with
run.sync_bn on and off (`robust_step_ms`): SyncBatchNorm synchronises with the host in every
batch-norm layer, the one host sync of a DDP step (on the CPU sync batch norm cannot run).
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from act.config import load_config
from act.errors import ActError
from act.run import loop as training
from act.run.build import prepare
from act.run.runtime import decide
from act.step import distributed, engine
from benchmarks.pipelines import device_name, random_cifar
from benchmarks.record import command_line, commit, write_record

RESULTS = Path(__file__).resolve().parent / "results" / "epoch_time.jsonl"
BASELINE = {"epoch_seconds": 40.0, "gpu_util": 24.0, "device": "RTX 3090 (public ACT code)"}


class UtilisationSampler(threading.Thread):
    """GPU utilisation (%) from nvidia-smi every `period` seconds, until stopped."""

    def __init__(self, period: float = 0.5):
        super().__init__(daemon=True)
        self.period, self.samples, self.stopped = period, [], threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout
                self.samples.append(float(out.split()[0]))
            except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
                return
            self.stopped.wait(self.period)

    def mean(self) -> float | None:
        return statistics.fmean(self.samples) if self.samples else None


def steady_median(values: list[float]) -> float | None:
    return statistics.median(values[1:] if len(values) > 1 else values) if values else None


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--root", default=None, help="data root; without it, random CIFAR-shaped data")
    parser.add_argument("--warmup-epochs", type=int, default=2)
    parser.add_argument("--robust-epochs", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=32, help="side of the random images (without --root)")
    parser.add_argument("--no-record", action="store_true", help="do not append to benchmarks/results")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args(argv)
    out_dir = tempfile.mkdtemp(prefix="act-epoch-time-")
    epochs = args.warmup_epochs + args.robust_epochs
    overrides = [f"data.root={args.root or 'random'}", f"run.out_dir={out_dir}", f"optim.epochs={epochs}",
                 f"optim.warmup_epochs={args.warmup_epochs}", "run.progress=false",
                 f"optim.lr_decay=cosine:{args.warmup_epochs},5e-4,{epochs}", *args.overrides]
    cfg = load_config(args.config, overrides)
    source = None
    if not args.root:
        num_classes = {"cifar10n": 10}.get(cfg.data.name, 100)
        source = random_cifar(classes=num_classes, size=args.image_size)
    run = prepare(cfg, decide(cfg), source=source)
    sampler = UtilisationSampler() if run.device.type == "cuda" else None
    if sampler:
        sampler.start()
    start = time.perf_counter()
    training.loop(run)
    wall = time.perf_counter() - start
    step_ms = sync_bn_step_ms(args.config, overrides, source) if run.world.size > 1 else None
    distributed.leave(run.world)
    if sampler:
        sampler.stopped.set()
    history = run.history
    warm = [r["epoch_seconds"] for r in history if r["phase"] == "warmup"]
    robust = [r["epoch_seconds"] for r in history if r["phase"] == "robust"]
    record = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": commit(),
        "device": device_name(run.device), "torch": torch.__version__,
        "config": args.config, "data": cfg.data.name if args.root else f"random-{args.image_size}px",
        "train_samples": len(run.pipeline.source.train), "pipeline": run.pipeline.name, "model": cfg.model.name,
        "batch_size": cfg.optim.batch_size, "amp": cfg.run.amp, "compile": cfg.run.compile,
        "compile_mode": cfg.run.compile_mode, "overrides": args.overrides,
        "warmup_epoch_seconds": steady_median(warm), "robust_epoch_seconds": steady_median(robust),
        "all_epoch_seconds": [r["epoch_seconds"] for r in history],
        "robust_images_per_s": steady_median([r["images_per_s"] for r in history if r["phase"] == "robust"]),
        "gpu_util_mean": sampler.mean() if sampler else None, "wall_seconds": wall,
        "world_size": run.world.size,
        "robust_step_ms": step_ms,
    }
    shutil.rmtree(out_dir, ignore_errors=True)
    if not run.world.main:
        return record
    scaling(record)
    if step_ms:
        print("robust step under DDP: " + ", ".join(
            f"run.sync_bn={k} {'-' if v is None else f'{v:.1f} ms'}" for k, v in step_ms.items() if k != "note")
              + f" ({step_ms['note']})")
    print(f"\n{record['device']}: warm-up epoch {record['warmup_epoch_seconds']:.2f} s, robust epoch "
          f"{record['robust_epoch_seconds']:.2f} s (train + test), {record['robust_images_per_s']:.0f} images/s"
          + (f", GPU busy {record['gpu_util_mean']:.0f}%" if record["gpu_util_mean"] is not None else ""))
    speedup = BASELINE["epoch_seconds"] / record["robust_epoch_seconds"]
    print(f"baseline ({BASELINE['device']}, CIFAR-100N, 50,000 images): {BASELINE['epoch_seconds']:.0f} s per epoch, "
          f"GPU busy {BASELINE['gpu_util']:.0f}%" + (f"  ->  {speedup:.1f}x" if run.device.type == "cuda" else
                                                    "  (a GPU figure: compare GPU runs only)"))
    if not args.no_record:
        header = ("date", "commit", "torch", "device", "config", "overrides")
        write_record(RESULTS, "epoch_time", {k: v for k, v in record.items() if k not in header},
                     command_line("benchmarks.epoch_time", argv),
                     {"config": args.config, "overrides": args.overrides}, record["device"])
    return record


def sync_bn_step_ms(config: str, overrides: list[str], source, steps: int = 20) -> dict:
    """Under torchrun: the robust step's median time (ms, each rank's step with its collectives)
    with run.sync_bn on and off. SyncBatchNorm's forward waits for the host in every batch-norm
    layer (torch/nn/modules/_functions.py, `count_all[mask]`), which the step alone shows; on the
    CPU it cannot run (None)."""
    out: dict = {"note": "median of the steps after 3 warm-up steps, same batches"}
    for setting in ("false", "true"):
        cfg = load_config(config, [*overrides, f"run.sync_bn={setting}"])
        try:
            run = prepare(cfg, decide(cfg), source=source)
        except ActError as exc:
            out[setting], out["note"] = None, f"{out['note']}; run.sync_bn={setting}: {exc}"
            continue
        epoch = cfg.optim.warmup_epochs  # the first robust epoch
        engine.set_lrs(run.ctx, run.rtm_plan[epoch], run.ntm_plan[epoch])
        run.ctx.set_epoch(epoch)
        step, times = run.steps[training.phase_of(cfg, epoch)], []
        for _, batch in zip(range(steps + 3), training.train_batches(run, epoch)):
            synchronise(run.device)
            start = time.perf_counter()
            step(batch, run.stats)
            synchronise(run.device)
            times.append(time.perf_counter() - start)
        out[setting] = 1000 * statistics.median(times[3:]) if len(times) > 3 else None
    return out


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def flat(line: str) -> dict:
    """One line of epoch_time.jsonl as one flat dict: a benchmarks/record.py record (its figures,
    config and device), or an older line that was written flat."""
    r = json.loads(line)
    return {**r["figures"], **r["config"], "device": r["device"]} if "figures" in r else r


def scaling(record: dict) -> None:
    """Images/s per process, and against the latest 1-process record of the same command and device."""
    size, rate = record["world_size"], record["robust_images_per_s"]
    record["robust_images_per_s_per_rank"] = rate / size if rate else None
    same = ("config", "data", "device", "train_samples", "pipeline", "model", "batch_size", "overrides")
    single = [r for r in map(flat, RESULTS.read_text().splitlines() if RESULTS.exists() else [])
              if r.get("world_size", 1) == 1 and all(r.get(k) == record[k] for k in same)]
    base = single[-1]["robust_images_per_s"] if single else None
    record["scaling_efficiency"] = rate / (size * base) if size > 1 and rate and base else None
    if size > 1:
        print(f"{size} processes: {rate:.0f} images/s, {rate / size:.0f} per process; " +
              (f"scaling efficiency {record['scaling_efficiency']:.0%} of {size} x {base:.0f} (1 process)"
               if base else "no 1-process record of this command yet: run it once without torchrun"))


if __name__ == "__main__":
    main()
