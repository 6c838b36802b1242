"""The end of an optimizer step shared by both training loops: clipping, the non-finite guard, the step."""

from __future__ import annotations

import pytest
import torch

from alignkit.training.checkpoint import LoopState
from alignkit.training.step import NonFiniteAbort, NonFiniteGuard, autocast, autocast_dtype, clip_and_step


def _setup() -> tuple[torch.nn.Parameter, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    param = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    param.grad = torch.tensor([3.0, 4.0])  # norm 5
    return param, optimizer, scheduler


def test_a_finite_step_is_clipped_and_taken() -> None:
    """Gradient (3, 4) has norm 5; clipped to 1 it is (0.6, 0.8); SGD at lr 1: (1, 1) - (0.6, 0.8)."""
    param, optimizer, scheduler = _setup()
    norm, finite = clip_and_step([param], optimizer, scheduler, loss=0.3, max_grad_norm=1.0)
    assert finite and norm == pytest.approx(5.0)
    assert param.detach().tolist() == pytest.approx([0.4, 0.2])
    assert param.grad is None and scheduler.get_last_lr() == [0.5]


def test_max_grad_norm_zero_measures_without_clipping() -> None:
    param, optimizer, scheduler = _setup()
    norm, finite = clip_and_step([param], optimizer, scheduler, loss=0.3, max_grad_norm=0.0)
    assert finite and norm == pytest.approx(5.0) and param.detach().tolist() == pytest.approx([-2.0, -3.0])


@pytest.mark.parametrize(("loss", "grad"), [(float("nan"), [3.0, 4.0]), (0.3, [float("inf"), 0.0])])
def test_a_non_finite_step_changes_nothing(loss: float, grad: list[float]) -> None:
    param, optimizer, scheduler = _setup()
    param.grad = torch.tensor(grad)
    _, finite = clip_and_step([param], optimizer, scheduler, loss=loss, max_grad_norm=1.0)
    assert not finite and param.detach().tolist() == [1.0, 1.0]
    assert param.grad is None and scheduler.get_last_lr() == [1.0]


def test_the_guard_counts_records_and_aborts_past_the_limit() -> None:
    state, written = LoopState(), []
    guard = NonFiniteGuard(state, written.append, limit=1)
    guard.skipped(3, loss=float("nan"), grad_norm=2.0, records=["a.jsonl:4", "a.jsonl:9"])
    guard.check(3, ["a.jsonl:4"])  # 1 skipped: at the limit, not past it
    assert state.nonfinite_steps == 1
    assert written == [{"kind": "nonfinite", "step": 3, "loss": written[0]["loss"], "grad_norm": 2.0,
                        "records": ["a.jsonl:4", "a.jsonl:9"]}]
    guard.skipped(5, loss=1.0, grad_norm=float("inf"), records=["b.jsonl:1"])
    with pytest.raises(NonFiniteAbort, match=r"2 non-finite steps .* last at step 5, records b.jsonl:1"):
        guard.check(5, ["b.jsonl:1"])


def test_one_autocast_policy_bf16_only_for_fp32_weights_training_on_cuda() -> None:
    fp32 = torch.nn.Linear(2, 2)
    frozen = torch.nn.Linear(2, 2).requires_grad_(False)
    bf16 = torch.nn.Linear(2, 2).to(torch.bfloat16)
    assert autocast_dtype(torch.device("cuda"), fp32) == torch.bfloat16
    assert autocast_dtype(torch.device("cuda"), frozen) is None and autocast_dtype(torch.device("cuda"), bf16) is None
    assert autocast_dtype(torch.device("cpu"), fp32) is None
    with autocast(torch.device("cpu"), fp32):
        assert not torch.is_autocast_enabled("cpu") and fp32(torch.ones(1, 2)).dtype == torch.float32
