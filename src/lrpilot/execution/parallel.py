"""Synchronous data-parallel training of an engine run across the ranks of a ``torch.distributed`` group.

Every rank draws the same global batch (same seed, same data generator) and trains on its own
contiguous share of it through ``DistributedDataParallel``. Each rank's loss is scaled by its
share, ``n_rank * world / n``, so that DDP's averaged gradient is the gradient of the global
batch's mean loss, even when the batch does not split evenly; the loss the engine records is
the global batch's (one all-reduce of a scalar per step), so curves and divergence checks are the
same on every rank and match single-process training up to floating-point reduction order.
BatchNorm statistics are those of each rank's share (as with DDP anywhere).
"""

from __future__ import annotations

import gc
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from lrpilot.engine import Run, batch_len


def shard(batch: Any, rank: int, world: int) -> Any:
    """Rank ``rank``'s contiguous share of ``batch`` (a tensor, or a tuple/list of tensors of equal length)."""
    if isinstance(batch, Tensor):
        return torch.tensor_split(batch, world)[rank]
    return type(batch)(torch.tensor_split(t, world)[rank] for t in batch)


class ShardedTask:
    """A task as one rank of a data-parallel group sees it: everything as the task's, but the training loss."""

    def __init__(self, task: Any, ddp: DistributedDataParallel, rank: int, world: int):
        self.task, self.ddp, self.rank, self.world = task, ddp, rank, world

    def __getattr__(self, name: str) -> Any:
        return getattr(self.task, name)

    def train_loss(self, model: torch.nn.Module, batch: Any) -> Tensor:
        """This rank's loss scaled by its share, ``n_rank * world / n``: DDP's average of its gradients is
        the global batch's, and the ranks' mean of it is the global batch's mean loss (:meth:`loss_sum`)."""
        part = shard(batch, self.rank, self.world)
        n, m = batch_len(batch), batch_len(part)
        if m == 0:  # fewer samples than ranks: a zero-weight pass keeps DDP's collectives in step
            return self.task.train_loss(self.ddp, batch) * 0.0
        return self.task.train_loss(self.ddp, part) * (m * self.world / n)

    def loss_sum(self, local: Tensor) -> Tensor:
        """The ranks' mean of their summed scaled losses: the global batches' summed mean losses."""
        total = local.detach().clone()
        dist.all_reduce(total)
        return total / self.world


def data_parallel(run: Run) -> None:
    """Make the engine run ``run`` train data-parallel across the ranks of the default process group."""
    device_ids = [run.device] if run.device.type == "cuda" else None
    ddp = DistributedDataParallel(run.model, device_ids=device_ids)
    run.use_task(ShardedTask(run.task, ddp, dist.get_rank(), dist.get_world_size()))


def single(run: Run) -> None:
    """Undo :func:`data_parallel`, freeing its DistributedDataParallel while the process group is still registered.

    Freed later, after ``destroy_process_group``, DDP's reducer would drop the group's last reference and its
    destructor would wait, holding the GIL, for gloo's worker thread, which needs the GIL to free a finished
    all-reduce's tensors: the process hangs at exit (seen about once in four torchrun runs)."""
    if isinstance(run.task, ShardedTask):
        run.use_task(run.task.task)
        gc.collect()
