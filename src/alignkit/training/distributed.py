"""Processes: the group a run joins under torchrun/accelerate, sums over processes, and leaving the group."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

import torch

from alignkit.training import parallel

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        """Waits until every process gets here (and, under gloo, until their earlier work is done)."""
        if self.world_size > 1:
            torch.distributed.barrier()

    def all_sum(self, value: float) -> float:
        if self.world_size == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(tensor)
        return float(tensor.item())

    def all_max(self, value: float) -> float:
        if self.world_size == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
        return float(tensor.item())

    def all_sum_tensor(self, tensor: torch.Tensor) -> torch.Tensor:
        """Element-wise sum over processes, as a new tensor on ``tensor``'s device (the identity in one
        process). Reduced on ``self.device``: NCCL reduces CUDA tensors only, and rollouts live on the CPU."""
        if self.world_size == 1:
            return tensor
        reduced = tensor.detach().to(self.device, copy=True)
        torch.distributed.all_reduce(reduced)
        return reduced.to(tensor.device)


def setup_distributed(device: torch.device) -> Distributed:
    """Joins the process group when launched by torchrun/accelerate (WORLD_SIZE > 1)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed(device=device)
    if not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend)
    rank = torch.distributed.get_rank()
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return Distributed(rank=rank, world_size=world_size, device=device)


def _group_is_up() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def leaves_its_group(run: Callable[P, R]) -> Callable[P, R]:
    """For a recipe's entry point: when the call joined the process group (``setup_distributed`` under
    torchrun), every process leaves it once the call has returned; a group the caller made is left alone.

    Why after the return: the model (FSDP's state holds the group) must be gone for the group to be freed,
    and only a freed gloo group stops its worker threads (why that matters: ``free_destroyed_groups``).
    Nothing is left on an error: the other processes may still be in a collective, and the launcher stops
    them when this one exits non-zero.
    """

    @functools.wraps(run)
    def run_then_leave(*args: P.args, **kwargs: P.kwargs) -> R:
        joined = not _group_is_up()
        result = run(*args, **kwargs)
        if joined and _group_is_up():
            leave_group()
        return result

    return run_then_leave


def leave_group() -> None:
    """Waits for every process (a gloo barrier also waits for all earlier work of the group), leaves the group
    and frees it, which joins gloo's worker threads."""
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
    parallel.free_destroyed_groups()
