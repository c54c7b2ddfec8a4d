"""Several processes, on one machine or several: torchrun and PyTorch's DistributedDataParallel.

`torchrun --nproc_per_node N -m act train ...` starts N processes with WORLD_SIZE, RANK and
LOCAL_RANK set; `join` makes them one process group (NCCL on CUDA, gloo on the CPU). Without
them, or with WORLD_SIZE=1, nothing here runs a collective and a run is a single process.
What the processes share, and how (each piece is a helper that act/run/build.py and act/run/loop.py call):

- data: `optim.batch_size` is the global batch; each rank trains its slice of every global
  batch (pipelines/shard.py), every index once per epoch, and every rank runs the same steps
  (`padded` adds an empty batch where a rank has no part of the last one).
- nets: each under DDP (gradients averaged over the ranks during the one backward), on a
  process group of its own, so the two reducers never interleave their buckets on one group.
  `run.sync_bn` turns batch norm into SyncBatchNorm: statistics over the global batch, as one
  process computes them (default on CUDA; PyTorch's SyncBatchNorm runs on GPUs only).
- the step: `all_sum` (engine.StepContext) adds the global batch's counts once per step, so
  the memorisation check, the selected mean and every batch mean are the global batch's.
- the memory bank: within an epoch each index belongs to one rank, which alone reads and writes
  its rows; `finish_epoch` all-reduces each row from its owner (the others add zero, so the
  sum is the owner's value exactly), with the epoch statistics and, without SyncBatchNorm,
  the average of the batch-norm running statistics. No collective per step for the bank.
- evaluation: each rank evaluates every size-th test batch; the counts are summed.
- files and console: rank 0 alone (the others print nothing and write nothing).
- failure: a process that dies or hangs makes a collective of the others fail (at once when
  its sockets close, else after `run.dist_timeout`); torchrun ends the rest with SIGTERM. At any
  stage of a run (`explain_lost`), both become one line naming the epoch on disk and the
  torchrun command that resumes it (`lost_text`). A refusal by rank 0 alone reaches every rank
  (`on_main`), so none waits for it.
"""
from __future__ import annotations

import inspect
import itertools
import os
import signal
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.parallel import DistributedDataParallel

from act.config import Config
from act.errors import ActError
from act.method.functions import Bank
from act.step import engine
from pipelines.base import Batch, Pipeline
from pipelines.shard import shard_positions

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process among the run's processes; the default is a run of one."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1  # the processes on this machine (torchrun's LOCAL_WORLD_SIZE)

    @property
    def main(self) -> bool:
        return self.rank == 0


class Stopped(Exception):
    """torchrun ended this process (SIGTERM), as it does when another process of the run ended."""


def on_sigterm(signum, frame) -> None:
    raise Stopped("torchrun sent SIGTERM")


def world_from_env() -> World:
    """This process among the run's processes, from torchrun's environment (a run of one without it)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World()
    return World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")),
                 int(os.environ.get("LOCAL_WORLD_SIZE", str(size))))


def join(world: World, device: str, timeout: int) -> None:
    """With more than one process, their process group (made by the first call), on NCCL when the
    run's device is CUDA: `world` and `device` as the run's Runtime decided them (act/run/runtime.py),
    `timeout` run.dist_timeout."""
    if world.size == 1 or dist.is_initialized():
        return
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(seconds=timeout))
    signal.signal(signal.SIGTERM, on_sigterm)


def leave(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()


def rank_batch(cfg: Config, world: World) -> int:
    """One rank's batch: `optim.batch_size` is the global batch, the same experiment on any number of processes."""
    batch, rest = divmod(cfg.optim.batch_size, world.size)
    if rest:
        raise ActError(f"optim.batch_size={cfg.optim.batch_size} is the global batch and must divide among the "
                       f"{world.size} processes of this run; use a multiple of {world.size}")
    if world.size > 1 and batch < 2:
        raise ActError(f"optim.batch_size={cfg.optim.batch_size} gives one sample per process over {world.size} "
                       f"processes; use at least {2 * world.size} (an epoch's last batch is split in parts of 2 or more)")
    return batch


def no_forward_buffer_sync() -> dict:
    """DDP's argument that stops broadcasting buffers at each forward, in the installed torch.
    torch 2.14 has `forward_sync_buffers` and warns that `broadcast_buffers` is deprecated (since
    2.13); torch 2.11 has only `broadcast_buffers`. Both switch the per-forward broadcast off; the
    old one also skips the broadcast of buffers when DDP wraps the net, which changes nothing
    here: every rank builds its nets from the same seed, so their buffers are equal then."""
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters:
        return {"forward_sync_buffers": False}
    return {"broadcast_buffers": False}


def wrap(world: World, net: nn.Module, device: torch.device, sync_bn: bool) -> nn.Module:
    """`net` under DDP (several processes), on a process group of its own. Buffers are not
    broadcast each forward: SyncBatchNorm keeps them equal, and without it `finish_epoch`
    averages the running statistics once per epoch."""
    if world.size == 1:
        return net
    if sync_bn:
        net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    return DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None,
                                   process_group=dist.new_group(), **no_forward_buffer_sync())


def unwrap(net: nn.Module) -> nn.Module:
    """The network inside a DDP module (what checkpoints hold and evaluation runs)."""
    return net.module if isinstance(net, DistributedDataParallel) else net


def all_sum(world: World) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """Sums a tensor over the ranks, in place, and returns it; None in one process."""
    if world.size == 1:
        return None

    def add(tensor: torch.Tensor) -> torch.Tensor:
        dist.all_reduce(tensor)
        return tensor

    return add


def padded(batches: Iterator[Batch], pipeline: Pipeline) -> Iterator[Batch]:
    """This rank's batches, then empty ones up to the steps every rank runs: a rank without a
    part of the last batch still meets that step's collectives (and adds nothing to it)."""
    steps = 0
    for steps, batch in enumerate(batches, 1):
        yield batch
    source, device = pipeline.source, pipeline.device
    for _ in range(pipeline.steps_per_epoch() - steps):
        images = torch.empty(0, source.channels, source.image_size, source.image_size, device=device)
        yield pipeline.labelled(torch.empty(0, dtype=torch.int64, device=device), images, images)


def owners(pipeline: Pipeline, epoch: int) -> torch.Tensor:
    """The rank that owns each sample's bank rows in `epoch`; rank 0 those that sat the epoch out
    (unchanged, so equal on every rank)."""
    positions = shard_positions(len(pipeline.source.train), pipeline.batch_size, pipeline.ranks).clamp(min=0)
    owner = torch.empty_like(positions)
    owner[pipeline.epoch_order(epoch)] = positions
    return owner


def finish_epoch(world: World, ctx: engine.StepContext, stats: engine.EpochStats, pipeline: Pipeline,
                 epoch: int) -> None:
    """Make the ranks equal again after an epoch: statistics, memory bank, batch-norm statistics."""
    if world.size == 1:
        return
    dist.all_reduce(stats.totals)
    exchange_bank(world, ctx.bank, owners(pipeline, epoch).to(ctx.bank.count.device))
    for net in (ctx.rtm, ctx.ntm):
        average_running_stats(world, net)


def exchange_bank(world: World, bank: Bank, owner: torch.Tensor) -> None:
    """Every row from its owner: the others contribute zeros, and x + 0 is x exactly."""
    mine = owner == world.rank
    for rows in (bank.count, bank.ema):
        shared = torch.where(mine.view(-1, *[1] * (rows.dim() - 1)), rows, torch.zeros_like(rows))
        dist.all_reduce(shared)
        rows.copy_(shared)


def average_running_stats(world: World, net: nn.Module) -> None:
    """The mean over the ranks of each plain batch norm's running mean and variance: the running
    mean then equals the one of the global batches (an average of equal parts); SyncBatchNorm
    layers are equal on every rank already."""
    for module in net.modules():
        if isinstance(module, _BatchNorm) and not isinstance(module, nn.SyncBatchNorm) and module.track_running_stats:
            for stat in (module.running_mean, module.running_var):
                dist.all_reduce(stat)
                stat.div_(world.size)


def evaluate(world: World, nets: list[nn.Module], batches: Iterator, amp_dtype: torch.dtype | None) -> list[float]:
    """Test accuracies: each rank evaluates every size-th batch with the bare nets (no DDP
    collective per forward), and the counts are summed."""
    return engine.evaluate([unwrap(net) for net in nets], itertools.islice(batches, world.rank, None, world.size),
                           amp_dtype, all_sum(world))


def barrier(world: World) -> None:
    """Every rank waits here for every other (after rank 0 wrote a checkpoint: no rank names an
    epoch as checkpointed before it is on disk)."""
    if world.size > 1:
        dist.barrier()


def bank_consistent(world: World, bank: Bank) -> bool:
    """Whether the bank is equal on every rank (elementwise maximum == minimum over the ranks)."""
    if world.size == 1:
        return True
    equal = True
    for rows in (bank.count, bank.ema):
        high, low = rows.clone(), rows.clone()
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        equal = equal and torch.equal(high, low)
    return equal


def on_main(world: World, make: Callable[[], T]) -> T:
    """`make()` run by rank 0, its result on every rank. An ActError there is raised on every
    rank: the others would otherwise wait for the result until the timeout."""
    if world.size == 1:
        return make()
    box: list = [None]
    error = None
    if world.main:
        try:
            box = [(make(), None)]
        except ActError as exc:
            error, box = exc, [(None, str(exc))]
    dist.broadcast_object_list(box, src=0)
    value, message = box[0]
    if error is not None:
        raise error
    if message is not None:
        raise ActError(message)
    return value


def check_world(world: World, state: dict, path) -> None:
    """A checkpoint resumes with the number of processes that wrote it (it fixes how each
    global batch is split, and with it the batch-norm statistics)."""
    trained = state.get("world_size", 1)
    if trained != world.size:
        raise ActError(f"checkpoint {path} was written by a run of {trained} process(es) and this one has "
                       f"{world.size}; resume with {trained} (torchrun --nnodes M --nproc_per_node K, M x K = "
                       f"{trained}; plain `act train --resume` for 1)")


def lost_peer(world: World, exc: BaseException) -> bool:
    """Whether `exc` is a collective failing because another process died, hung or was stopped."""
    signs = ("gloo", "nccl", "connection", "timed out", "timeout", "broken pipe")
    return world.size > 1 and (isinstance(exc, (Stopped, dist.DistError)) or
                                (isinstance(exc, RuntimeError) and any(s in str(exc).lower() for s in signs)))


def lost_text(world: World, exc: BaseException, where: str, timeout: int, saved: str) -> str:
    """The one line every surviving process prints: where it stopped, why, and `saved`, what the
    run folder holds and how to continue."""
    if isinstance(exc, Stopped):
        why = "torchrun ended it (SIGTERM), as it does when the run is stopped or another of its processes ended"
    else:
        cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        why = (f"another process of this run died, was killed or hung (gloo/NCCL timeout "
               f"run.dist_timeout={timeout} s; {cause})")
    return f"process {world.rank} of {world.size} stopped {where}: {why}; {saved}"


@contextmanager
def explain_lost(world: World, timeout: int, stage: Callable[[], tuple[str, str]]) -> Iterator[None]:
    """A lost process inside the block (a collective failing, torchrun's SIGTERM) becomes an
    ActError of `lost_text`; `stage()`, asked when it happens, says where the run is and what its
    folder holds."""
    try:
        yield
    except Exception as exc:
        if not lost_peer(world, exc):
            raise
        global LOST
        LOST = True
        where, saved = stage()
        raise ActError(lost_text(world, exc, where, timeout, saved)) from exc


# Set when this process lost a peer: its process group is broken, and tearing it down at exit
# may abort the process (SIGABRT: a C++ thread still joinable), so act/commands/cli.py leaves at
# once, after its line (`exit_now_if_lost`).
LOST = False


def resume_command(world: World, run_dir: Path) -> str:
    """The command that continues `run_dir` with as many processes as this run (a checkpoint
    resumes with the number that wrote it)."""
    if world.size == 1:
        return f"`act train --resume {run_dir}`"
    if world.local_size == world.size:
        return f"`torchrun --nproc_per_node {world.size} -m act train --resume {run_dir}`"
    return (f"`torchrun --nnodes {world.size // world.local_size} --nproc_per_node {world.local_size} -m act train "
            f"--resume {run_dir}` on each machine, with the rendezvous options of the first start")


def console(world: World, out):
    """Where this process prints: `out` on rank 0, nowhere on the others."""
    return out if world.main else open(os.devnull, "w")
