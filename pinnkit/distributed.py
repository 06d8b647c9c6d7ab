"""Data-parallel training with torch.distributed (DESIGN §9): one process per rank, started by
``torchrun --nproc_per_node=N scripts/solve.py PROBLEM.py``.

Every rank draws the same global point sets (same seeds) and keeps the rows ``rank::world``
of each, so the union of the shards is the single-process point set for any number of
ranks. Each rank's loss terms are its shard's sums of squared residuals divided by the
*global* counts, so the sum over ranks of the local losses (and of their gradients) is the
single-process mean: gradients, loss values and the statistics of the weighting schemes are
all-reduced with SUM (MAX for RBA's normaliser), and every rank takes the same optimizer step.
A one-process run (no process group, or a group of one) takes none of these paths.

The process group comes from the torchrun environment (``WORLD_SIZE``, ``RANK``,
``MASTER_ADDR``/``MASTER_PORT``): gloo on CPUs, NCCL on CUDA, with a collective timeout so that
a dead rank ends the job instead of hanging it.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .pinn.batches import Batch, Batches

__all__ = ["Shard", "current", "init_from_env", "TIMEOUT_S"]

#: seconds a collective waits for the other ranks before the job fails
TIMEOUT_S = float(os.environ.get("PINNKIT_DIST_TIMEOUT", "60"))


def init_from_env(device: str = "auto") -> bool:
    """Start the default process group when launched by torchrun with more than one rank
    (``WORLD_SIZE`` > 1); True if a group is (now) active. NCCL for CUDA devices, else gloo."""
    import torch.distributed as dist
    if not dist.is_available() or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if dist.is_initialized():
        return True
    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo",
                            timeout=datetime.timedelta(seconds=TIMEOUT_S))
    return True


@dataclass(frozen=True)
class Shard:
    """This process's place in a data-parallel run (world 1, rank 0 without a process group)."""

    world: int = 1
    rank: int = 0
    backend: str = "none"

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def rows(self, a: np.ndarray) -> np.ndarray:
        """This rank's rows of a global point array (rows rank, rank + world, ...)."""
        return a[self.rank::self.world] if self.active else a

    def batches(self, batches: Batches, convert: Callable) -> Batches:
        """This rank's rows (`rows`) of every point set, each array converted by ``convert``
        (e.g. to tensors); in a data-parallel run each `Batch` also carries ``S``, its share
        of the global count (``convert``ed), by which the losses multiply its mean."""
        def local(b: Batch) -> Batch:
            mine = b.map(lambda a: convert(self.rows(a)))
            return mine._replace(S=convert(len(mine.X) / len(b.X))) if self.active else mine
        return batches.map_batches(local)

    def all_reduce(self, t: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """``t`` reduced over the ranks, in place (and returned); identity in one process."""
        if self.active:
            import torch.distributed as dist
            dist.all_reduce(t, op={"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}[op])
        return t

    def all_reduce_many(self, tensors: list) -> None:
        """Sum-reduce several tensors (e.g. gradients) through one flat buffer: one collective."""
        if not self.active or not tensors:
            return
        # complex tensors (an FNO's spectral weights) travel as their real and imaginary parts
        views = [torch.view_as_real(t) if t.is_complex() else t for t in tensors]
        flat = torch.cat([t.reshape(-1) for t in views])
        self.all_reduce(flat)
        i = 0
        for t in views:
            n = t.numel()
            t.copy_(flat[i:i + n].view_as(t))
            i += n

    def gather_rows(self, local: torch.Tensor, n_global: int) -> torch.Tensor:
        """The global array whose rows ``rank::world`` are each rank's ``local`` (inverse of
        `rows`), on every rank."""
        if not self.active:
            return local
        import torch.distributed as dist
        width = -(-n_global // self.world)
        buf = torch.zeros((width,) + tuple(local.shape[1:]), dtype=local.dtype, device=local.device)
        buf[:len(local)] = local
        parts = [torch.empty_like(buf) for _ in range(self.world)]
        dist.all_gather(parts, buf)
        out = torch.empty((n_global,) + tuple(local.shape[1:]), dtype=local.dtype,
                          device=local.device)
        for r, p in enumerate(parts):
            out[r::self.world] = p[:len(range(r, n_global, self.world))]
        return out


def current() -> Shard:
    """The `Shard` of the default process group (world 1 without one)."""
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return Shard()
    return Shard(dist.get_world_size(), dist.get_rank(), str(dist.get_backend()))
