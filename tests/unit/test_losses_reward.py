"""Bradley-Terry reward loss against values derived by hand (arithmetic in each docstring)."""

from __future__ import annotations

import math

import pytest
import torch

from alignkit.losses.reward import bradley_terry_loss, pairwise_accuracy


def t(*xs: float) -> torch.Tensor:
    return torch.tensor(xs, dtype=torch.float64)


def test_bradley_terry_hand_value() -> None:
    """rc = 1.0, rr = 0.5: loss = -log σ(0.5) = log(1 + e^-0.5) = log(1 + 0.6065306597) = log 1.6065306597
    = 0.4740769842.  Equal rewards: -log σ(0) = log 2."""
    torch.testing.assert_close(bradley_terry_loss(t(1.0), t(0.5)), t(0.4740769842), atol=1e-9, rtol=0)
    torch.testing.assert_close(bradley_terry_loss(t(3.0), t(3.0)), t(math.log(2)))


def test_bradley_terry_margin() -> None:
    """A margin is subtracted from the reward gap: rc - rr - m = 1.0 - 0.5 - 0.5 = 0 -> log 2.
    Per-example margins: [0.5, -0.5] -> gaps [0, 1] -> [log 2, log(1 + e^-1)] = [0.6931471806, 0.3132616875]."""
    torch.testing.assert_close(bradley_terry_loss(t(1.0), t(0.5), margin=0.5), t(math.log(2)))
    torch.testing.assert_close(
        bradley_terry_loss(t(1.0, 1.0), t(0.5, 0.5), margin=t(0.5, -0.5)),
        t(0.6931471806, 0.3132616875),
        atol=1e-9,
        rtol=0,
    )


def test_bradley_terry_centering() -> None:
    """c = 0.01: the centering term is c (rc + rr)² = 0.01 · (1.0 + 0.5)² = 0.01 · 2.25 = 0.0225.
    loss = 0.4740769842 + 0.0225 = 0.4965769842.  A pair centred on 0 (rc = -rr) pays nothing extra."""
    torch.testing.assert_close(
        bradley_terry_loss(t(1.0), t(0.5), center_rewards_coefficient=0.01),
        t(0.4965769842),
        atol=1e-9,
        rtol=0,
    )
    torch.testing.assert_close(
        bradley_terry_loss(t(0.7), t(-0.7), center_rewards_coefficient=0.5),
        bradley_terry_loss(t(0.7), t(-0.7)),
    )


def test_bradley_terry_gradient_separates_the_pair() -> None:
    """∂loss/∂rc = -σ(-(rc - rr)) = -σ(-0.5) = -1 / (1 + e^0.5) = -1 / 2.6487212707 = -0.3775406688;
    ∂loss/∂rr = +0.3775406688: descent raises the chosen reward and lowers the rejected one."""
    chosen = t(1.0).requires_grad_()
    rejected = t(0.5).requires_grad_()
    bradley_terry_loss(chosen, rejected).sum().backward()
    torch.testing.assert_close(chosen.grad, t(-0.3775406688), atol=1e-9, rtol=0)
    torch.testing.assert_close(rejected.grad, t(0.3775406688), atol=1e-9, rtol=0)


def test_bradley_terry_shape_checks() -> None:
    with pytest.raises(ValueError, match=r"\(B,\)"):
        bradley_terry_loss(torch.zeros(3, 1), torch.zeros(3, 1))
    with pytest.raises(ValueError, match="margin"):
        bradley_terry_loss(torch.zeros(3), torch.zeros(3), margin=torch.zeros(3, 1))
    with pytest.raises(ValueError, match="center"):
        bradley_terry_loss(torch.zeros(3), torch.zeros(3), center_rewards_coefficient=-1.0)


def test_pairwise_accuracy_counts_ties_as_wrong() -> None:
    """[1 > 0, 0 > 1, 2 > 2] = [yes, no, tie] -> 1/3."""
    acc = pairwise_accuracy(t(1.0, 0.0, 2.0), t(0.0, 1.0, 2.0))
    torch.testing.assert_close(acc, torch.tensor(1 / 3))
    assert not acc.requires_grad
