"""What every optimizer step shares, one implementation for the SFT/DPO/RM loop (``loop.run_loop``) and
the PPO/GRPO update (``rl_run.RLRun.update``): the autocast policy of its forwards; the backward passes of
its micro-batches, each weighted by its share of the step (``accumulate``); at its end, clip the
gradients, apply the non-finite guard, step.

The non-finite guard (a DESIGN contract): a step whose loss or gradient norm is not finite changes
nothing (no optimizer or scheduler step), is counted in ``LoopState.nonfinite_steps``, is written to
metrics.jsonl as a ``nonfinite`` record naming the records of its batch, and is logged; past
``train.max_nonfinite_steps`` the run aborts with ``NonFiniteAbort`` naming the last batch.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import torch

from alignkit.errors import AlignkitError
from alignkit.training import parallel
from alignkit.training.checkpoint import LoopState

log = logging.getLogger(__name__)
Batch = TypeVar("Batch")


def autocast_dtype(device: torch.device, model: torch.nn.Module) -> torch.dtype | None:
    """bf16 on CUDA when fp32 weights train (full fp32 runs, LoRA factors over 4-bit bases), else None."""
    if device.type == "cuda" and any(p.dtype == torch.float32 for p in model.parameters() if p.requires_grad):
        return torch.bfloat16
    return None


@contextlib.contextmanager
def autocast(device: torch.device, model: torch.nn.Module) -> Iterator[None]:
    """The autocast of every training forward (and of the no-grad forwards whose log-probs it is compared
    with, so that a PPO ratio starts at exactly 1); nothing on the CPU.

    Under it, LoRA layers take their input as it comes: PEFT keeps adapter weights in fp32 and copies
    every adapted linear's input to fp32 before the low-rank product, which autocast then runs in bf16
    anyway, so the copy only writes (and keeps for backward) an fp32 activation per adapted layer. With
    this, LoRA ran at 0.98x of full fine-tuning's tokens/s on an H200 (1B shape; 0.85x on an H100 before,
    not a like-for-like comparison). Without autocast PEFT's cast stays (fp32 factors over a bf16 base
    need it).
    """
    dtype = autocast_dtype(device, model)
    if dtype is None:
        yield
        return
    from peft.helpers import disable_input_dtype_casting

    with torch.autocast("cuda", dtype=dtype), disable_input_dtype_casting(model):
        yield


class NonFiniteAbort(AlignkitError):
    """Too many non-finite steps."""


def accumulate(
    micro_batches: Sequence[Batch],
    forward: Callable[[Batch], tuple[torch.Tensor, dict[str, float]]],
    weight: Callable[[Batch], float],
    *,
    no_sync: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
) -> list[tuple[float, dict[str, float]]]:
    """The backward passes of one optimizer step: ``(weight(mb) * loss(mb)).backward()`` for each
    micro-batch, so the gradients in ``.grad`` are the step's weighted sum.

    The weights make micro-batch size, accumulation and process count leave the gradient unchanged: the
    SFT/DPO/RM loop weights a summed loss by ``world size / the global batch's normaliser`` (DDP and FSDP
    then average over processes), PPO/GRPO a token-mean loss by its share of the mini-batch's reply tokens
    over all processes (then summed over processes). ``no_sync`` (DDP's) holds the gradient all-reduce
    until the last micro-batch; FSDP reduce-scatters after each one, so its gradients stay sharded in
    between. Returns each micro-batch's loss value and metrics, unweighted, for the caller's logging.
    """
    results = []
    for index, micro in enumerate(micro_batches):
        last = index == len(micro_batches) - 1
        with no_sync() if no_sync is not None and not last else contextlib.nullcontext():
            loss, metrics = forward(micro)
            (loss * weight(micro)).backward()
        results.append((float(loss.detach()), metrics))
    return results


def clip_and_step(
    params: Sequence[torch.nn.Parameter],
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    *,
    loss: float,
    max_grad_norm: float,
) -> tuple[float, bool]:
    """Clips the gradients to ``max_grad_norm`` (0: measured, not clipped), steps the optimizer and the
    scheduler when the loss and the norm are finite, and clears the gradients. Returns (norm, finite)."""
    grad_norm = parallel.global_grad_norm(
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm if max_grad_norm > 0 else float("inf"))
    )
    finite = math.isfinite(loss) and bool(torch.isfinite(grad_norm))
    if finite:
        optimizer.step()
        scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return float(grad_norm), finite


class NonFiniteGuard:
    """Counts, records and logs the skipped steps of a run; ``check`` aborts past the limit."""

    def __init__(self, state: LoopState, write: Callable[[dict[str, Any]], None], *, limit: int) -> None:
        self.state = state
        self.write = write
        self.limit = limit

    def skipped(self, step: int, *, loss: float, grad_norm: float, records: list[str]) -> None:
        self.state.nonfinite_steps += 1
        self.write({"kind": "nonfinite", "step": step, "loss": loss, "grad_norm": grad_norm, "records": records})
        log.warning("step %d: non-finite loss/grad norm (loss=%s, grad_norm=%s); skipped. Records: %s",
                    step, loss, grad_norm, ", ".join(records[:8]))

    def check(self, step: int, records: list[str]) -> None:
        if self.state.nonfinite_steps > self.limit:
            raise NonFiniteAbort(
                f"{self.state.nonfinite_steps} non-finite steps (limit train.max_nonfinite_steps={self.limit}); "
                f"last at step {step}, records {', '.join(records[:4])}",
                field="train.max_nonfinite_steps",
            )
