"""Preference losses against values derived by hand (arithmetic in each docstring)."""

from __future__ import annotations

import math

import pytest
import torch

from alignkit.losses.preference import (
    PreferenceLossOutput,
    dpo_loss,
    ipo_loss,
    orpo_loss,
    simpo_loss,
)


def t(*xs: float) -> torch.Tensor:
    return torch.tensor(xs, dtype=torch.float64)


# ----------------------------------------------------------------------------------------- DPO


def test_dpo_hand_value() -> None:
    """β = 0.1, πc = -10, πr = -12, rc = rr = -11.

    h = (πc - rc) - (πr - rr) = (-10 + 11) - (-12 + 11) = 1 - (-1) = 2;  βh = 0.2
    loss = -log σ(0.2) = log(1 + e^-0.2) = log(1 + 0.8187307531) = log 1.8187307531 = 0.5981388694
    rewards: chosen β(πc - rc) = 0.1, rejected β(πr - rr) = -0.1
    """
    out = dpo_loss(t(-10.0), t(-12.0), t(-11.0), t(-11.0), beta=0.1)
    assert isinstance(out, PreferenceLossOutput)
    torch.testing.assert_close(out.losses, t(0.5981388694), atol=1e-9, rtol=0)
    torch.testing.assert_close(out.chosen_rewards, t(0.1))
    torch.testing.assert_close(out.rejected_rewards, t(-0.1))


def test_cdpo_hand_value() -> None:
    """Same pair, label_smoothing ε = 0.1: loss = -(1-ε) log σ(0.2) - ε log σ(-0.2).

    -log σ(0.2)  = 0.5981388694 (above);  -log σ(-0.2) = log(1 + e^0.2) = log 2.2214027582 = 0.7981388694
    loss = 0.9 · 0.5981388694 + 0.1 · 0.7981388694 = 0.5383249824 + 0.0798138869 = 0.6181388694
    (check: softplus(x) - softplus(-x) = -x, so loss = 0.5981388694 + 0.1 · 0.2.)
    """
    out = dpo_loss(t(-10.0), t(-12.0), t(-11.0), t(-11.0), beta=0.1, label_smoothing=0.1)
    torch.testing.assert_close(out.losses, t(0.6181388694), atol=1e-9, rtol=0)


@pytest.mark.parametrize("beta", [0.01, 0.1, 1.0, 10.0])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.25])
def test_dpo_policy_equals_reference_is_log2(beta: float, label_smoothing: float) -> None:
    """policy == reference: h = 0, so loss = -(1-ε) log σ(0) - ε log σ(0) = -log ½ = log 2, rewards 0."""
    logps = torch.randn(5, dtype=torch.float64) * 30 - 50
    other = torch.randn(5, dtype=torch.float64) * 30 - 50
    out = dpo_loss(logps, other, logps.clone(), other.clone(), beta=beta, label_smoothing=label_smoothing)
    torch.testing.assert_close(out.losses, torch.full_like(logps, math.log(2)), atol=1e-12, rtol=0)
    assert torch.all(out.chosen_rewards == 0) and torch.all(out.rejected_rewards == 0)


def test_dpo_gradient_pushes_chosen_up_and_rejected_down() -> None:
    """∂loss/∂πc = -β σ(-βh) < 0 and ∂loss/∂πr = +β σ(-βh) > 0; the reference gets no gradient here.

    With the pair above, βh = 0.2:  σ(-0.2) = 1 / (1 + e^0.2) = 1 / 2.2214027582 = 0.4501660027
    ∂loss/∂πc = -0.1 · 0.4501660027 = -0.0450166003,  ∂loss/∂πr = +0.0450166003.
    Gradient descent therefore raises log π(chosen) and lowers log π(rejected).
    """
    chosen = t(-10.0).requires_grad_()
    rejected = t(-12.0).requires_grad_()
    out = dpo_loss(chosen, rejected, t(-11.0), t(-11.0), beta=0.1)
    out.losses.sum().backward()
    assert chosen.grad is not None and rejected.grad is not None
    assert chosen.grad.item() < 0 < rejected.grad.item()
    torch.testing.assert_close(chosen.grad, t(-0.0450166003), atol=1e-9, rtol=0)
    torch.testing.assert_close(rejected.grad, t(0.0450166003), atol=1e-9, rtol=0)
    assert not out.chosen_rewards.requires_grad and not out.rejected_rewards.requires_grad


def test_dpo_per_example_and_batch_independent() -> None:
    """Each example's loss depends on its own four numbers only: a batch equals its rows done one by one."""
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(6, generator=g, dtype=torch.float64) * 5 - 20 for _ in range(4)]
    batch = dpo_loss(*xs, beta=0.3, label_smoothing=0.1).losses
    rows = torch.cat(
        [dpo_loss(*(x[i : i + 1] for x in xs), beta=0.3, label_smoothing=0.1).losses for i in range(6)]
    )
    torch.testing.assert_close(batch, rows)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"beta": 0.0},
        {"beta": -1.0},
        {"beta": 0.1, "label_smoothing": 0.5},
        {"beta": 0.1, "label_smoothing": -0.1},
    ],
)
def test_dpo_rejects_bad_hyper_parameters(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        dpo_loss(t(-1.0), t(-2.0), t(-1.0), t(-2.0), **kwargs)


def test_dpo_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="shape"):
        dpo_loss(t(-1.0, -2.0), t(-2.0), t(-1.0), t(-2.0), beta=0.1)
    with pytest.raises(ValueError, match="shape"):
        z = torch.zeros(2, 1)
        dpo_loss(z, z, z, z, beta=0.1)


# ----------------------------------------------------------------------------------------- IPO


def test_ipo_hand_value() -> None:
    """Length-averaged log-probs: πc = -1.0, rc = -1.5, πr = -2.0, rr = -1.5, β = 0.1.

    h = (-1.0 + 1.5) - (-2.0 + 1.5) = 0.5 + 0.5 = 1.0;  1/(2β) = 1/0.2 = 5
    loss = (1.0 - 5)² = 16;  rewards 0.1 · 0.5 = 0.05 and 0.1 · (-0.5) = -0.05
    With β = 0.5 the target 1/(2β) = 1 equals h and the loss is 0.
    """
    out = ipo_loss(t(-1.0), t(-2.0), t(-1.5), t(-1.5), beta=0.1)
    torch.testing.assert_close(out.losses, t(16.0))
    torch.testing.assert_close(out.chosen_rewards, t(0.05))
    torch.testing.assert_close(out.rejected_rewards, t(-0.05))
    torch.testing.assert_close(ipo_loss(t(-1.0), t(-2.0), t(-1.5), t(-1.5), beta=0.5).losses, t(0.0))


def test_ipo_policy_equals_reference() -> None:
    """h = 0: loss = (1/(2β))² = (1/0.4)² = 2.5² = 6.25 for β = 0.2, and the gradient raises chosen.

    ∂loss/∂πc = 2 (h - 1/(2β)) = 2 · (-2.5) = -5;  ∂loss/∂πr = +5.
    """
    chosen = t(-3.0).requires_grad_()
    rejected = t(-4.0).requires_grad_()
    out = ipo_loss(chosen, rejected, t(-3.0), t(-4.0), beta=0.2)
    torch.testing.assert_close(out.losses, t(6.25))
    out.losses.sum().backward()
    torch.testing.assert_close(chosen.grad, t(-5.0))
    torch.testing.assert_close(rejected.grad, t(5.0))


# --------------------------------------------------------------------------------------- SimPO


def test_simpo_hand_value() -> None:
    """πc = -6 over 3 tokens, πr = -12 over 4 tokens, β = 2, γ = 0.5.

    ac = -6/3 = -2, ar = -12/4 = -3;  z = β(ac - ar) - γ = 2 · 1 - 0.5 = 1.5
    loss = -log σ(1.5) = log(1 + e^-1.5) = log(1 + 0.2231301601) = log 1.2231301601 = 0.2014132780
    rewards β·ac = -4, β·ar = -6
    With ε = 0.1: loss = 0.2014132780 + 0.1 · 1.5 = 0.3514132780 (softplus(-z) - softplus(z) = -z).
    """
    out = simpo_loss(t(-6.0), t(-12.0), chosen_lengths=t(3.0), rejected_lengths=t(4.0), beta=2.0, gamma=0.5)
    torch.testing.assert_close(out.losses, t(0.2014132780), atol=1e-9, rtol=0)
    torch.testing.assert_close(out.chosen_rewards, t(-4.0))
    torch.testing.assert_close(out.rejected_rewards, t(-6.0))
    smoothed = simpo_loss(
        t(-6.0),
        t(-12.0),
        chosen_lengths=torch.tensor([3]),
        rejected_lengths=torch.tensor([4]),
        beta=2.0,
        gamma=0.5,
        label_smoothing=0.1,
    )
    torch.testing.assert_close(smoothed.losses, t(0.3514132780), atol=1e-9, rtol=0)


def test_simpo_is_length_normalised() -> None:
    """Doubling a completion (sum and length both ×2) leaves its average, hence the loss, unchanged."""
    a = simpo_loss(t(-6.0), t(-12.0), chosen_lengths=t(3.0), rejected_lengths=t(4.0), beta=2.0, gamma=0.5)
    b = simpo_loss(t(-12.0), t(-24.0), chosen_lengths=t(6.0), rejected_lengths=t(8.0), beta=2.0, gamma=0.5)
    torch.testing.assert_close(a.losses, b.losses)


def test_simpo_rejects_zero_length() -> None:
    with pytest.raises(ValueError, match="lengths"):
        simpo_loss(t(-6.0), t(-12.0), chosen_lengths=t(0.0), rejected_lengths=t(4.0), beta=2.0, gamma=0.5)


def test_simpo_bfloat16_lengths_are_exact() -> None:
    """257 tokens cannot be represented in bfloat16 (it rounds to 256), so the average is taken in
    float32: ac = -256 / 257 = -0.9961089494, not -256 / 256 = -1; ar = -256 / 128 = -2."""
    out = simpo_loss(
        torch.tensor([-256.0], dtype=torch.bfloat16),
        torch.tensor([-256.0], dtype=torch.bfloat16),
        chosen_lengths=torch.tensor([257]),
        rejected_lengths=torch.tensor([128]),
        beta=1.0,
        gamma=0.0,
    )
    assert out.losses.dtype == torch.float32
    torch.testing.assert_close(out.chosen_rewards, torch.tensor([-0.9961089494]))
    torch.testing.assert_close(out.rejected_rewards, torch.tensor([-2.0]))


# ---------------------------------------------------------------------------------------- ORPO


def test_orpo_hand_value() -> None:
    """Chosen: 2 tokens of p = ½ each, πc = 2 log ½ -> ac = log ½, P = ½, odds = ½ / ½ = 1.
    Rejected: 3 tokens of p = ¼, πr = 3 log ¼ -> ar = log ¼, P = ¼, odds = ¼ / ¾ = ⅓.

    log odds ratio = log(1 / ⅓) = log 3 = 1.0986122887
    log σ(log 3) = log(3 / (3 + 1)) = log ¾ = -0.2876820725
    β = 0.1, chosen_nll = -ac = log 2 = 0.6931471806
    loss = 0.6931471806 + 0.1 · 0.2876820725 = 0.6931471806 + 0.0287682072 = 0.7219153878
    rewards β·ac = 0.1 log ½ = -0.0693147181, β·ar = 0.1 log ¼ = -0.1386294361
    """
    half, quarter = math.log(0.5), math.log(0.25)
    out = orpo_loss(
        t(2 * half),
        t(3 * quarter),
        chosen_lengths=t(2.0),
        rejected_lengths=t(3.0),
        chosen_nll=t(math.log(2)),
        beta=0.1,
    )
    torch.testing.assert_close(out.losses, t(0.7219153878), atol=1e-9, rtol=0)
    torch.testing.assert_close(out.chosen_rewards, t(0.1 * half))
    torch.testing.assert_close(out.rejected_rewards, t(0.1 * quarter))


def test_orpo_scalar_nll_broadcasts() -> None:
    out = orpo_loss(
        t(-2.0, -3.0),
        t(-4.0, -5.0),
        chosen_lengths=t(2.0, 2.0),
        rejected_lengths=t(2.0, 2.0),
        chosen_nll=1.5,
        beta=0.2,
    )
    assert out.losses.shape == (2,)
    with pytest.raises(ValueError, match="chosen_nll"):
        orpo_loss(
            t(-2.0, -3.0),
            t(-4.0, -5.0),
            chosen_lengths=t(2.0, 2.0),
            rejected_lengths=t(2.0, 2.0),
            chosen_nll=torch.zeros(2, 1),
            beta=0.2,
        )


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_orpo_is_numerically_stable_at_the_extremes(dtype: torch.dtype) -> None:
    """Average log-probs of 0 (P = 1: odds infinite), -1e-6 (log(1 - e^x) cancels naively) and -100
    (e^x underflows): the loss and its gradients stay finite, and a more probable chosen helps."""
    chosen = torch.tensor([0.0, -1e-6, -100.0, -1e-6], dtype=dtype, requires_grad=True)
    rejected = torch.tensor([-100.0, -100.0, 0.0, -1e-3], dtype=dtype, requires_grad=True)
    ones = torch.ones(4)
    out = orpo_loss(chosen, rejected, chosen_lengths=ones, rejected_lengths=ones, chosen_nll=0.0, beta=1.0)
    assert torch.isfinite(out.losses).all()
    out.losses.sum().backward()
    assert chosen.grad is not None and rejected.grad is not None
    assert torch.isfinite(chosen.grad).all() and torch.isfinite(rejected.grad).all()
    # chosen much likelier than rejected -> tiny loss; the reverse -> large loss.
    assert out.losses[1] < 1e-3 < 10 < out.losses[2]


def test_orpo_matches_naive_formula_where_naive_is_accurate() -> None:
    """For moderate averages the naive log(1 - exp(a)) is exact enough: compare in float64."""
    g = torch.Generator().manual_seed(1)
    chosen = -torch.rand(8, generator=g, dtype=torch.float64) * 3 - 0.05
    rejected = -torch.rand(8, generator=g, dtype=torch.float64) * 3 - 0.05
    ones = torch.ones(8, dtype=torch.float64)
    out = orpo_loss(
        chosen, rejected, chosen_lengths=ones, rejected_lengths=ones, chosen_nll=-chosen, beta=0.5
    )
    log_odds = (chosen - rejected) - (torch.log(1 - torch.exp(chosen)) - torch.log(1 - torch.exp(rejected)))
    expected = -chosen - 0.5 * torch.log(torch.sigmoid(log_odds))
    torch.testing.assert_close(out.losses, expected)
