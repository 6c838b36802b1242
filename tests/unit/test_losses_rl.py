"""RL building blocks against values derived by hand (arithmetic in each docstring)."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from alignkit.losses.rl import (
    AdaptiveKLController,
    FixedKLController,
    KLController,
    compute_gae,
    entropy_from_logits,
    explained_variance,
    group_advantages,
    kl_estimate,
    masked_mean,
    masked_moments,
    masked_sum,
    masked_var,
    masked_whiten,
    ppo_policy_loss,
    ppo_value_loss,
    stop_penalty,
)

NAN = float("nan")


def t(*rows: object) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


# A (2, 4) batch with NaN garbage on the padding: masked statistics must never see it.
VALUES = t([1.0, 2.0, 3.0, NAN], [4.0, 5.0, NAN, NAN])
MASK = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])


# ------------------------------------------------------------------------------ masked statistics


def test_masked_sum_and_mean_ignore_padding() -> None:
    """Masked entries 1, 2, 3, 4, 5: sum 15, mean 15/5 = 3; per row: (1+2+3)/3 = 2 and (4+5)/2 = 4.5."""
    torch.testing.assert_close(masked_sum(VALUES, MASK), torch.tensor(15.0, dtype=torch.float64))
    torch.testing.assert_close(masked_sum(VALUES, MASK, dim=1), t(6.0, 9.0))
    torch.testing.assert_close(masked_mean(VALUES, MASK), torch.tensor(3.0, dtype=torch.float64))
    torch.testing.assert_close(masked_mean(VALUES, MASK, dim=1), t(2.0, 4.5))


def test_masked_mean_of_an_empty_row_is_zero() -> None:
    values = t([1.0, 2.0], [NAN, NAN])
    mask = torch.tensor([[1, 1], [0, 0]])
    torch.testing.assert_close(masked_mean(values, mask, dim=1), t(1.5, 0.0))


def test_masked_var() -> None:
    """Entries 1..5, mean 3: squared deviations 4, 1, 0, 1, 4 sum to 10.
    Unbiased: 10 / (5 - 1) = 2.5; biased: 10 / 5 = 2."""
    torch.testing.assert_close(masked_var(VALUES, MASK), torch.tensor(2.5, dtype=torch.float64))
    torch.testing.assert_close(
        masked_var(VALUES, MASK, unbiased=False), torch.tensor(2.0, dtype=torch.float64)
    )
    with pytest.raises(ValueError, match="at least 2"):
        masked_var(VALUES, torch.tensor([[1, 0, 0, 0], [0, 0, 0, 0]]))
    with pytest.raises(ValueError, match="no positions"):
        masked_var(VALUES, torch.zeros_like(MASK))


def test_masked_whiten_hand_value() -> None:
    """(x - 3) / sqrt(2.5): sqrt(2.5) = 1.5811388301, so 1 -> -2/1.5811388301 = -1.2649110641,
    2 -> -0.6324555320, 3 -> 0, 4 -> 0.6324555320, 5 -> 1.2649110641; padding -> 0."""
    out = masked_whiten(VALUES, MASK)
    expected = t([-1.2649110641, -0.6324555320, 0.0, 0.0], [0.6324555320, 1.2649110641, 0.0, 0.0])
    torch.testing.assert_close(out, expected, atol=1e-8, rtol=0)


def test_masked_whiten_gives_mean_0_var_1_over_masked_entries() -> None:
    g = torch.Generator().manual_seed(0)
    values = torch.randn(4, 9, generator=g, dtype=torch.float64) * 3 + 7
    mask = torch.zeros(4, 9, dtype=torch.long)
    for row, length in enumerate([9, 5, 2, 7]):
        mask[row, :length] = 1
    values[mask == 0] = 1e6  # padding garbage must not shift the statistics
    out = masked_whiten(values, mask)
    torch.testing.assert_close(
        masked_mean(out, mask), torch.tensor(0.0, dtype=torch.float64), atol=1e-12, rtol=0
    )
    torch.testing.assert_close(
        masked_var(out, mask), torch.tensor(1.0, dtype=torch.float64), atol=1e-7, rtol=0
    )
    assert torch.all(out[mask == 0] == 0)
    # shift_mean=False keeps the mean, changes only the scale.
    kept = masked_whiten(values, mask, shift_mean=False)
    torch.testing.assert_close(masked_mean(kept, mask), masked_mean(values, mask))


def test_masked_whiten_gradient_is_finite_with_nan_padding() -> None:
    values = VALUES.clone().requires_grad_()
    (masked_whiten(values, MASK) * torch.arange(4.0, dtype=torch.float64)).sum().backward()
    assert values.grad is not None
    assert torch.isfinite(values.grad).all()
    assert torch.all(values.grad[MASK == 0] == 0)


AllSum = Callable[[torch.Tensor], torch.Tensor]


def on_fake_processes(*shard_fns: Callable[[AllSum], object]) -> list[object]:
    """Runs each fn(all_sum) in its own thread, as one process of a data-parallel group: like
    ``all_reduce``, the k-th all_sum call of every shard returns the element-wise sum of the tensors
    all shards passed to their k-th call (summed in shard order, so every shard gets the same bits)."""
    barrier = threading.Barrier(len(shard_fns), timeout=30)
    slots: list[torch.Tensor | None] = [None] * len(shard_fns)

    def all_sum_of(shard: int) -> AllSum:
        def all_sum(tensor: torch.Tensor) -> torch.Tensor:
            slots[shard] = tensor
            barrier.wait()
            total = torch.stack(slots).sum(dim=0)  # type: ignore[arg-type]
            barrier.wait()  # no shard posts its next tensor before every shard has read this sum
            return total

        return all_sum

    with ThreadPoolExecutor(len(shard_fns)) as pool:
        futures = [pool.submit(fn, all_sum_of(i)) for i, fn in enumerate(shard_fns)]
        return [f.result() for f in futures]


def test_masked_whiten_over_two_shards_hand_value() -> None:
    """Shard A holds 1, 2, 3 (and NaN padding), shard B holds 4, 5: the batch of the tests above.

    First all_sum: A sends (count 3, sum 6), B sends (2, 9): (5, 15), global mean 3.
    Second: A sends (1-3)² + (2-3)² + (3-3)² = 5, B sends (4-3)² + (5-3)² = 5: 10.
    Unbiased variance 10 / 4 = 2.5, as for the whole batch: A -> (-1.2649110641, -0.6324555320, 0),
    B -> (0.6324555320, 1.2649110641). Whitened alone, A would be (1 - 2) / 1, ... = (-1, 0, 1).
    """
    shard_a, mask_a = t([1.0, 2.0, 3.0, NAN]), torch.tensor([[1, 1, 1, 0]])
    shard_b, mask_b = t([4.0, 5.0, NAN]), torch.tensor([[1, 1, 0]])  # its own width, as a process's rollout
    moments_a, moments_b = on_fake_processes(
        lambda all_sum: masked_moments(shard_a, mask_a, all_sum=all_sum),
        lambda all_sum: masked_moments(shard_b, mask_b, all_sum=all_sum),
    )
    expected_moments = (t(5.0)[0], t(3.0)[0], t(10.0)[0])
    for got in (moments_a, moments_b):
        torch.testing.assert_close(got, expected_moments, atol=0, rtol=0)  # type: ignore[arg-type]
    white_a, white_b = on_fake_processes(
        lambda all_sum: masked_whiten(shard_a, mask_a, all_sum=all_sum),
        lambda all_sum: masked_whiten(shard_b, mask_b, all_sum=all_sum),
    )
    torch.testing.assert_close(white_a, t([-1.2649110641, -0.6324555320, 0.0, 0.0]), atol=1e-8, rtol=0)
    torch.testing.assert_close(white_b, t([0.6324555320, 1.2649110641, 0.0]), atol=1e-8, rtol=0)
    torch.testing.assert_close(masked_whiten(shard_a, mask_a), t([-1.0, 0.0, 1.0, 0.0]), atol=1e-8, rtol=0)


def test_masked_whiten_of_shards_equals_whitening_the_concatenated_batch() -> None:
    """Float32 advantages far from 0 (mean 50, std 3), ragged rows, 1e6 garbage on padding, split 2 + 4
    rows with each shard cut to its own longest row: the shards' results are the whole batch's rows."""
    g = torch.Generator().manual_seed(0)
    values = torch.randn(6, 9, generator=g) * 3 + 50
    mask = torch.zeros(6, 9, dtype=torch.long)
    for row, length in enumerate([9, 5, 2, 7, 1, 4]):
        mask[row, :length] = 1
    values[mask == 0] = 1e6
    whole = masked_whiten(values, mask)
    rows = [slice(0, 2), slice(2, 6)]
    shards = [(values[rows[0]], mask[rows[0]]), (values[rows[1], :7], mask[rows[1], :7])]
    results = on_fake_processes(*(partial_whiten(v, m) for v, m in shards))
    for shard_rows, (shard_values, shard_mask), result in zip(rows, shards, results, strict=True):
        width = shard_values.shape[1]
        torch.testing.assert_close(result, whole[shard_rows, :width], atol=1e-6, rtol=0)
        # Whitened alone, a shard gets another answer: the comparison above can tell them apart.
        alone = masked_whiten(shard_values, shard_mask)
        assert (alone - whole[shard_rows, :width]).abs().max() > 0.05


def partial_whiten(values: torch.Tensor, mask: torch.Tensor) -> Callable[[AllSum], torch.Tensor]:
    return lambda all_sum: masked_whiten(values, mask, all_sum=all_sum)


def test_masked_var_over_shards_is_exact_far_from_zero() -> None:
    """Float32 values 1e4 + N(0, 0.1²), 2 x 500 per shard. One reduction of Σx² would lose it all:
    Σx² ≈ 1e11, float32 spacing there ≈ 8e3, while n·var ≈ 10. Two passes keep it (≈ float64 within 1%)."""
    g = torch.Generator().manual_seed(1)
    values = 1e4 + 0.1 * torch.randn(4, 500, generator=g, dtype=torch.float64)
    mask = torch.ones(4, 500)
    exact = masked_var(values, mask)
    shards = [(values[:2].float(), mask[:2]), (values[2:].float(), mask[2:])]
    variances = on_fake_processes(*(lambda s, v=v, m=m: masked_var(v, m, all_sum=s) for v, m in shards))
    for var in variances:
        assert abs(float(var) / float(exact) - 1) < 1e-2, (float(var), float(exact))


# ----------------------------------------------------------------------------------- KL estimators

# π = (½, ¼, ¼), π_ref = (¼, ¼, ½) over three tokens; log_ratio = log π/π_ref = (log 2, 0, -log 2).
PI = t(0.5, 0.25, 0.25)
REF = t(0.25, 0.25, 0.5)


def _expectation_under_pi(kind: str) -> torch.Tensor:
    per_token = kl_estimate(PI.log(), REF.log(), kind=kind)  # type: ignore[arg-type]
    return (PI * per_token).sum()


def test_k1_and_k3_are_unbiased() -> None:
    """KL(π ‖ π_ref) = Σ π log(π/π_ref) = ½ log 2 + ¼ · 0 + ¼ log ½ = ¼ log 2 = 0.1732867951.

    k1 = log_ratio = (log 2, 0, -log 2): E_π = ½ log 2 - ¼ log 2 = ¼ log 2.
    k3 = e^-lr - 1 + lr: token 1: ½ - 1 + log 2 = 0.1931471806; token 2: 0;
         token 3: 2 - 1 - log 2 = 0.3068528194.
         E_π = ½ · 0.1931471806 + ¼ · 0.3068528194 = 0.0965735903 + 0.0767132049 = 0.1732867951.
    """
    true_kl = torch.tensor(0.25 * math.log(2), dtype=torch.float64)
    torch.testing.assert_close((PI * (PI.log() - REF.log())).sum(), true_kl)
    torch.testing.assert_close(_expectation_under_pi("k1"), true_kl)
    torch.testing.assert_close(_expectation_under_pi("k3"), true_kl)
    torch.testing.assert_close(
        kl_estimate(PI.log(), REF.log(), kind="k3"), t(0.1931471806, 0.0, 0.3068528194), atol=1e-9, rtol=0
    )


def test_k2_is_biased_and_nonnegative() -> None:
    """k2 = ½ lr²: tokens ½ (log 2)² = ½ · 0.4804530139 = 0.2402265070, 0, 0.2402265070.
    E_π = (½ + ¼) · 0.2402265070 = 0.1801698802 ≠ KL = 0.1732867951 (biased up here)."""
    k2 = kl_estimate(PI.log(), REF.log(), kind="k2")
    torch.testing.assert_close(k2, t(0.2402265070, 0.0, 0.2402265070), atol=1e-9, rtol=0)
    torch.testing.assert_close(_expectation_under_pi("k2"), torch.tensor(0.1801698802, dtype=torch.float64))
    assert (k2 >= 0).all()


def test_k1_can_be_negative_k3_cannot() -> None:
    k1 = kl_estimate(PI.log(), REF.log(), kind="k1")
    k3 = kl_estimate(PI.log(), REF.log(), kind="k3")
    assert k1[2] < 0
    assert (k3 >= 0).all()


@pytest.mark.parametrize("kind", ["k1", "k2", "k3"])
def test_kl_is_zero_at_policy_equals_reference(kind: str) -> None:
    logprobs = -torch.rand(3, 5, dtype=torch.float64) * 5
    assert torch.all(kl_estimate(logprobs, logprobs.clone(), kind=kind) == 0)  # type: ignore[arg-type]


def test_kl_estimate_rejects_unknown_kind_and_shapes() -> None:
    with pytest.raises(ValueError, match="kind"):
        kl_estimate(torch.zeros(2), torch.zeros(2), kind="k4")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shape"):
        kl_estimate(torch.zeros(2), torch.zeros(3), kind="k1")


# --------------------------------------------------------------------------------------------- GAE


def test_gae_hand_computed_4_steps() -> None:
    """γ = 0.9, λ = 0.8 (γλ = 0.72). Row 0: rewards (0, 0, 0, 1), values (0.5, 0.6, 0.7, 0.8), 4 real tokens.

    δ3 = 1 + 0.9·0   - 0.8 = 0.2        (no value after the last token)
    δ2 = 0 + 0.9·0.8 - 0.7 = 0.02
    δ1 = 0 + 0.9·0.7 - 0.6 = 0.03
    δ0 = 0 + 0.9·0.6 - 0.5 = 0.04
    A3 = 0.2
    A2 = 0.02 + 0.72·0.2     = 0.164
    A1 = 0.03 + 0.72·0.164   = 0.03 + 0.11808   = 0.14808
    A0 = 0.04 + 0.72·0.14808 = 0.04 + 0.1066176 = 0.1466176
    R  = A + V = (0.6466176, 0.74808, 0.864, 1.0)

    Row 1: 3 real tokens, rewards (0, 0, 1 | 5), values (0.5, 0.6, 0.7 | 99): the padded 4th column
    must be ignored. δ2 = 1 - 0.7 = 0.3, δ1 = 0.03, δ0 = 0.04;
    A2 = 0.3, A1 = 0.03 + 0.72·0.3 = 0.246, A0 = 0.04 + 0.72·0.246 = 0.21712;
    R = (0.71712, 0.846, 1.0, 0).
    """
    rewards = t([0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 5.0])
    values = t([0.5, 0.6, 0.7, 0.8], [0.5, 0.6, 0.7, 99.0])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    advantages, returns = compute_gae(rewards, values, mask, gamma=0.9, lam=0.8)
    torch.testing.assert_close(advantages, t([0.1466176, 0.14808, 0.164, 0.2], [0.21712, 0.246, 0.3, 0.0]))
    torch.testing.assert_close(returns, t([0.6466176, 0.74808, 0.864, 1.0], [0.71712, 0.846, 1.0, 0.0]))


def test_gae_with_gamma_lambda_1_is_monte_carlo() -> None:
    """γ = λ = 1: A_t = Σ_{k>=t} r_k - V_t and R_t = Σ_{k>=t} r_k (rewards-to-go).
    rewards (0, 0, 1), values (0.2, 0.4, 0.6): R = (1, 1, 1), A = (0.8, 0.6, 0.4)."""
    advantages, returns = compute_gae(
        t([0.0, 0.0, 1.0]), t([0.2, 0.4, 0.6]), torch.ones(1, 3), gamma=1.0, lam=1.0
    )
    torch.testing.assert_close(returns, t([1.0, 1.0, 1.0]))
    torch.testing.assert_close(advantages, t([0.8, 0.6, 0.4]))


def test_gae_is_invariant_to_extra_padding() -> None:
    g = torch.Generator().manual_seed(0)
    rewards = torch.randn(3, 6, generator=g, dtype=torch.float64)
    values = torch.randn(3, 6, generator=g, dtype=torch.float64)
    mask = (torch.arange(6) < torch.tensor([[6], [4], [1]])).long()
    adv, ret = compute_gae(rewards, values, mask, gamma=0.99, lam=0.95)
    pad = torch.full((3, 5), NAN, dtype=torch.float64)
    adv_p, ret_p = compute_gae(
        torch.cat([rewards, pad], 1),
        torch.cat([values, pad], 1),
        torch.cat([mask, torch.zeros(3, 5, dtype=torch.long)], 1),
        gamma=0.99,
        lam=0.95,
    )
    torch.testing.assert_close(adv_p[:, :6], adv)
    torch.testing.assert_close(ret_p[:, :6], ret)
    assert torch.all(adv_p[:, 6:] == 0) and torch.all(ret_p[:, 6:] == 0)


def test_gae_has_no_gradient() -> None:
    values = torch.rand(2, 3, requires_grad=True)
    adv, ret = compute_gae(torch.rand(2, 3), values, torch.ones(2, 3), gamma=1.0, lam=0.9)
    assert not adv.requires_grad and not ret.requires_grad


# ------------------------------------------------------------------------------------- PPO policy


def test_ppo_policy_loss_hand_value() -> None:
    """ε = 0.2, one token per case, ρ = exp(logprobs - old):

    token  ρ    A    -Aρ    -A clip(ρ, 0.8, 1.2)   max    clipped?
      0   1.5  +1   -1.5        -1.2              -1.2    yes
      1   1.5  -1   +1.5        +1.2              +1.5    no  (pessimistic side: keep the gradient)
      2   0.5  +1   -0.5        -0.8              -0.5    no
      3   0.5  -1   +0.5        +0.8              +0.8    yes
    loss = (-1.2 + 1.5 - 0.5 + 0.8) / 4 = 0.6 / 4 = 0.15;  clip_fraction = 2/4 = 0.5
    approx_kl = ½ mean(lr²) = ½ · (2 (log 1.5)² + 2 (log 0.5)²) / 4 = ¼ (0.1644019539 + 0.4804530139)
              = ¼ · 0.6448549678 = 0.1612137420
    ∂loss/∂logprobs = (1/4) · (-A ρ) where unclipped, 0 where clipped = (0, 0.375, -0.125, 0).
    """
    old = t([-1.0, -2.0, -1.5, -0.7])
    logprobs = (old + t([math.log(1.5), math.log(1.5), math.log(0.5), math.log(0.5)])).requires_grad_()
    advantages = t([1.0, -1.0, 1.0, -1.0])
    loss, clip_fraction, approx_kl = ppo_policy_loss(
        logprobs, old, advantages, torch.ones(1, 4), clip_range=0.2
    )
    torch.testing.assert_close(loss, torch.tensor(0.15, dtype=torch.float64))
    torch.testing.assert_close(clip_fraction, torch.tensor(0.5, dtype=torch.float64))
    torch.testing.assert_close(approx_kl, torch.tensor(0.1612137420, dtype=torch.float64))
    loss.backward()
    torch.testing.assert_close(logprobs.grad, t([0.0, 0.375, -0.125, 0.0]))
    assert not clip_fraction.requires_grad and not approx_kl.requires_grad


def test_ppo_policy_loss_at_and_beyond_the_clip_boundary() -> None:
    """A = +1, ε = 0.2. Inside (ρ = 1.1): loss = -1.1, ∂loss/∂logprob = -Aρ = -1.1.
    At the boundary (ρ = 1.2): loss = -1.2.  Beyond (ρ = 1.5): loss = -1.2 (clipped), gradient 0."""
    cases = {1.1: (-1.1, -1.1), 1.5: (-1.2, 0.0)}
    for ratio, (expected_loss, expected_grad) in cases.items():
        logprobs = t([math.log(ratio)]).requires_grad_()
        loss, _, _ = ppo_policy_loss(logprobs, t([0.0]), t([1.0]), torch.ones(1, 1), clip_range=0.2)
        torch.testing.assert_close(loss, torch.tensor(expected_loss, dtype=torch.float64))
        loss.backward()
        torch.testing.assert_close(logprobs.grad, t([expected_grad]))
    at_boundary, _, _ = ppo_policy_loss(
        t([math.log(1.2)]), t([0.0]), t([1.0]), torch.ones(1, 1), clip_range=0.2
    )
    torch.testing.assert_close(at_boundary, torch.tensor(-1.2, dtype=torch.float64))


def test_ppo_policy_loss_at_policy_equals_old_policy() -> None:
    """ρ = 1: loss = -mean(A) = -(0.5 - 1 + 2)/3 = -0.5, nothing clipped, approx_kl 0, ∂/∂logprob = -A/3."""
    logprobs = t([-1.0, -2.0, -3.0]).requires_grad_()
    advantages = t([0.5, -1.0, 2.0])
    loss, clip_fraction, approx_kl = ppo_policy_loss(
        logprobs, logprobs.detach().clone(), advantages, torch.ones(1, 3), clip_range=0.2
    )
    torch.testing.assert_close(loss, torch.tensor(-0.5, dtype=torch.float64))
    assert clip_fraction.item() == 0 and approx_kl.item() == 0
    loss.backward()
    torch.testing.assert_close(logprobs.grad, -advantages / 3)


def test_ppo_policy_loss_ignores_padding_garbage() -> None:
    g = torch.Generator().manual_seed(0)
    logprobs = -torch.rand(2, 3, generator=g, dtype=torch.float64)
    old = -torch.rand(2, 3, generator=g, dtype=torch.float64)
    advantages = torch.randn(2, 3, generator=g, dtype=torch.float64)
    mask = torch.ones(2, 3)
    garbage = t([NAN, float("inf")], [-float("inf"), NAN])
    padded = [torch.cat([x, garbage], 1) for x in (logprobs, old, advantages)]
    padded_mask = torch.cat([mask, torch.zeros(2, 2)], 1)
    lp = padded[0].clone().requires_grad_()
    loss_p, clip_p, kl_p = ppo_policy_loss(lp, padded[1], padded[2], padded_mask, clip_range=0.2)
    loss, clip, kl = ppo_policy_loss(logprobs, old, advantages, mask, clip_range=0.2)
    torch.testing.assert_close((loss_p, clip_p, kl_p), (loss, clip, kl))
    loss_p.backward()
    assert lp.grad is not None and torch.isfinite(lp.grad).all()


# -------------------------------------------------------------------------------------- PPO value


def test_ppo_value_loss_hand_value() -> None:
    """c = 0.2, old values 0, returns 1.
    token 0: V = 0.5: unclipped (0.5-1)² = 0.25; V_clip = 0 + clip(0.5) = 0.2, (0.2-1)² = 0.64 -> 0.64, clipped
    token 1: V = 0.1: (0.1-1)² = 0.81; V_clip = 0.1, 0.81 -> 0.81, not clipped
    loss = ½ (0.64 + 0.81) / 2 = ½ · 0.725 = 0.3625; value_clip_fraction = ½.
    ∂loss/∂V: token 0 clipped -> 0; token 1: ½ · 2 (0.1 - 1) / 2 = -0.45.
    """
    values = t([0.5, 0.1]).requires_grad_()
    loss, clip_fraction = ppo_value_loss(
        values, t([0.0, 0.0]), t([1.0, 1.0]), torch.ones(1, 2), clip_range_value=0.2
    )
    torch.testing.assert_close(loss, torch.tensor(0.3625, dtype=torch.float64))
    torch.testing.assert_close(clip_fraction, torch.tensor(0.5, dtype=torch.float64))
    loss.backward()
    torch.testing.assert_close(values.grad, t([0.0, -0.45]))


def test_ppo_value_loss_ignores_padding_garbage() -> None:
    values = t([0.5, 0.1, NAN]).requires_grad_()
    loss, _ = ppo_value_loss(
        values, t([0.0, 0.0, NAN]), t([1.0, 1.0, NAN]), t([1, 1, 0]), clip_range_value=0.2
    )
    torch.testing.assert_close(loss, torch.tensor(0.3625, dtype=torch.float64))
    loss.backward()
    assert values.grad is not None and torch.isfinite(values.grad).all()


# ------------------------------------------------------------------------------------------- GRPO


def test_group_advantages_hand_value() -> None:
    """G = 4. Group 0 rewards (1, 0, 0, 1): mean ½; unbiased std = sqrt(4 · ¼ / 3) = sqrt(⅓) = 0.5773502692;
    A = ±½ / (0.5773502692 + 1e-4) = ±½ / 0.5774502692 = ±0.8658754298.
    Group 1 rewards (1, 1, 1, 1): mean 1, std 0 -> A = 0 / 1e-4 = 0.
    scale=False (Dr. GRPO): A = r - mean = ±½ and 0."""
    rewards = t(1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    a = 0.8658754298
    torch.testing.assert_close(
        group_advantages(rewards, 4), t(a, -a, -a, a, 0.0, 0.0, 0.0, 0.0), atol=1e-9, rtol=0
    )
    torch.testing.assert_close(
        group_advantages(rewards, 4, scale=False), t(0.5, -0.5, -0.5, 0.5, 0.0, 0.0, 0.0, 0.0)
    )


def test_group_advantages_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="group_size"):
        group_advantages(torch.zeros(4), 1)
    with pytest.raises(ValueError, match="group_size"):
        group_advantages(torch.zeros(6), 4)


def test_stop_penalty() -> None:
    """rewards (1, 2, 3), stopped (yes, no, yes), penalty 1.5 -> (1, 0.5, 3)."""
    rewards = t(1.0, 2.0, 3.0)
    out = stop_penalty(rewards, torch.tensor([True, False, True]), penalty=1.5)
    torch.testing.assert_close(out, t(1.0, 0.5, 3.0))
    torch.testing.assert_close(rewards, t(1.0, 2.0, 3.0))  # not modified in place


# ------------------------------------------------------------------------------------ diagnostics


def test_entropy_hand_values() -> None:
    """uniform over 4: log 4 = 1.3862943611;  (½, ¼, ¼): -(½ log ½ + 2 · ¼ log ¼) = ½ log 2 + log 2 = 1.5 log 2
    = 1.0397207708;  logits (0, 0, 0, -inf): uniform over 3, log 3 = 1.0986122887."""
    logits = torch.stack(
        [
            torch.zeros(4),
            torch.tensor([0.5, 0.25, 0.25, 0.0]).log(),
            torch.tensor([0.0, 0.0, 0.0, -float("inf")]),
        ]
    ).requires_grad_()
    entropy = entropy_from_logits(logits)
    torch.testing.assert_close(entropy, torch.tensor([1.3862943611, 1.0397207708, 1.0986122887]))
    entropy.sum().backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_entropy_chunked_equals_unchunked_and_upcasts() -> None:
    logits = torch.randn(3, 5, 11, generator=torch.Generator().manual_seed(0)) * 4
    full = entropy_from_logits(logits)
    assert full.shape == (3, 5)
    torch.testing.assert_close(entropy_from_logits(logits, chunk_size=4), full)
    half = entropy_from_logits(logits.to(torch.bfloat16), chunk_size=2)
    assert half.dtype == torch.float32


def test_explained_variance_hand_value() -> None:
    """returns (1, 2, 3, 4): mean 2.5, biased var (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25.
    values (1, 2, 3, 3): residual (0, 0, 0, 1), mean 0.25, var (3 · 0.0625 + 0.5625) / 4 = 0.1875.
    EV = 1 - 0.1875 / 1.25 = 1 - 0.15 = 0.85.  values == returns -> 1; values == mean return -> 0."""
    returns = t([1.0, 2.0, 3.0, 4.0, NAN])
    mask = torch.tensor([[1, 1, 1, 1, 0]])
    ev = explained_variance(t([1.0, 2.0, 3.0, 3.0, NAN]), returns, mask)
    torch.testing.assert_close(ev, torch.tensor(0.85, dtype=torch.float64))
    torch.testing.assert_close(
        explained_variance(returns, returns, mask), torch.tensor(1.0, dtype=torch.float64)
    )
    torch.testing.assert_close(
        explained_variance(torch.full_like(returns, 2.5), returns, mask),
        torch.tensor(0.0, dtype=torch.float64),
    )
    assert torch.isnan(explained_variance(returns, torch.ones_like(returns), mask))


# ------------------------------------------------------------------------------ KL controllers


def test_adaptive_kl_controller_hand_values() -> None:
    """β0 = 0.2, target 6, horizon 10000.
    update(kl=9, n=256):  e = clip(9/6 - 1 = 0.5) = 0.2;  β = 0.2 · (1 + 0.2 · 256 / 10000) = 0.2 · 1.00512 = 0.201024
    update(kl=3, n=256):  e = clip(3/6 - 1 = -0.5) = -0.2; β = 0.201024 · 0.99488 = 0.19999475712
    update(kl=6.6, n=100): e = 0.1 (unclipped);           β = 0.19999475712 · 1.001 = 0.20019475187712
    """
    ctl = AdaptiveKLController(0.2, target=6.0, horizon=10000)
    ctl.update(9.0, 256)
    assert ctl.value == pytest.approx(0.201024, abs=1e-15)
    ctl.update(3.0, 256)
    assert ctl.value == pytest.approx(0.19999475712, abs=1e-15)
    ctl.update(6.6, 100)
    assert ctl.value == pytest.approx(0.20019475187712, abs=1e-15)


def test_kl_controllers_resume_from_json() -> None:
    ctl = AdaptiveKLController(0.1, target=4.0, horizon=1000)
    ctl.update(10.0, 64)
    state = json.loads(json.dumps(ctl.state_dict()))
    resumed = AdaptiveKLController(0.5, target=1.0, horizon=1.0)
    resumed.load_state_dict(state)
    for c in (ctl, resumed):
        c.update(2.0, 32)
    assert resumed.value == ctl.value and resumed.state_dict() == ctl.state_dict()

    fixed: KLController = FixedKLController(0.05)
    fixed.update(100.0, 256)
    assert fixed.value == 0.05
    other = FixedKLController(1.0)
    other.load_state_dict(json.loads(json.dumps(fixed.state_dict())))
    assert other.value == 0.05


def test_adaptive_kl_controller_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        AdaptiveKLController(0.1, target=0.0, horizon=10)
    with pytest.raises(ValueError, match="finite"):
        AdaptiveKLController(0.1, target=1.0, horizon=10).update(float("nan"), 1)
