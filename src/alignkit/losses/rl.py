"""RL building blocks for PPO / GRPO: masked statistics, KL estimators, GAE, clipped losses.

Shapes: B sequences, T token positions (right-padded), V vocabulary. ``mask`` is a 0/1 (or bool)
tensor marking the positions that count (response tokens); everything else is padding. Padding
never leaks: masked positions are selected out with ``torch.where`` before any arithmetic, so
NaN/inf garbage there changes neither values nor gradients.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, Protocol

import torch
from torch import Tensor

__all__ = [
    "AdaptiveKLController",
    "FixedKLController",
    "KLController",
    "compute_gae",
    "entropy_from_logits",
    "explained_variance",
    "group_advantages",
    "kl_estimate",
    "masked_mean",
    "masked_moments",
    "masked_sum",
    "masked_var",
    "masked_whiten",
    "ppo_policy_loss",
    "ppo_value_loss",
    "stop_penalty",
]


# ---------------------------------------------------------------------------------------------
# Masked statistics
# ---------------------------------------------------------------------------------------------


def _masked(values: Tensor, mask: Tensor) -> Tensor:
    """values with the positions outside ``mask`` replaced by 0 (gradient-safe for NaN/inf there)."""
    if values.shape != mask.shape:
        raise ValueError(
            f"values and mask must have the same shape, got {tuple(values.shape)} and {tuple(mask.shape)}"
        )
    return torch.where(mask.bool(), values, torch.zeros((), dtype=values.dtype, device=values.device))


def masked_sum(values: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Σ values over the positions where mask is 1.

    values, mask: same shape (e.g. (B, T)). dim=None sums everything (scalar); otherwise reduces ``dim``.
    """
    selected = _masked(values, mask)
    return selected.sum() if dim is None else selected.sum(dim=dim)


def masked_mean(values: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Mean of values over the positions where mask is 1.

    values, mask: same shape (e.g. (B, T)). dim=None: one scalar, the token-level mean over the
    whole batch; dim=1 on (B, T): per-sequence means (B,).

    Departure from TRL/OpenRLHF (which return NaN): an empty selection (mask all 0 along ``dim``)
    gives 0, so a micro-batch whose responses were all empty contributes no loss and no gradient
    instead of poisoning the step with NaN.
    """
    count = mask.to(values.dtype).sum() if dim is None else mask.to(values.dtype).sum(dim=dim)
    return masked_sum(values, mask, dim) / count.clamp(min=1)


def masked_moments(
    values: Tensor, mask: Tensor, *, all_sum: Callable[[Tensor], Tensor] | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """(count, mean, sum of squared deviations from the mean) of values where mask is 1: scalars.

    values, mask: same shape. ``all_sum`` sums a tensor over data-parallel processes (e.g. an
    ``all_reduce``); with it, the moments are those of the global batch, the concatenation of every
    process's masked values. None: this tensor alone.

    Two reductions: (count, Σx) first, then Σ(x - mean)² around the *global* mean. One reduction of
    (count, Σx, Σx²) would save a round trip, but Σx² - (Σx)²/n cancels catastrophically in float32
    when |mean| >> std (e.g. returns far from 0). ``all_sum`` is not differentiated
    through; without it, gradients flow to ``values`` as usual.
    """
    count = mask.to(values.dtype).sum()
    total = masked_sum(values, mask)
    if all_sum is not None:
        count, total = all_sum(torch.stack([count, total])).unbind()
    mean = total / count.clamp(min=1)
    # Mask before squaring: NaN on padding would otherwise reach the gradient of ``mean``.
    squared_deviations = (_masked(values - mean, mask) ** 2).sum()
    if all_sum is not None:
        squared_deviations = all_sum(squared_deviations)
    return count, mean, squared_deviations


def _variance(count: Tensor, squared_deviations: Tensor, *, unbiased: bool) -> Tensor:
    """Σ(x - mean)² / n, times n/(n-1) when ``unbiased``; reads n on the host (one sync per call)."""
    n = int(count.item())
    if n == 0:
        raise ValueError("masked_var: the mask selects no positions")
    var = squared_deviations / count.clamp(min=1)
    if unbiased:
        if n == 1:
            raise ValueError("masked_var: unbiased variance needs at least 2 masked positions, got 1")
        var = var * (n / (n - 1))
    return var


def masked_var(
    values: Tensor,
    mask: Tensor,
    unbiased: bool = True,
    *,
    all_sum: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """Variance of values over the positions where mask is 1 (a scalar).

    values, mask: same shape. unbiased=True uses Bessel's correction n/(n-1), n = mask.sum() (over
    all processes with ``all_sum``, see ``masked_moments``). Raises ValueError when there are no
    positions, or only one and ``unbiased`` is set.
    """
    count, _, squared_deviations = masked_moments(values, mask, all_sum=all_sum)
    return _variance(count, squared_deviations, unbiased=unbiased)


def masked_whiten(
    values: Tensor,
    mask: Tensor,
    shift_mean: bool = True,
    eps: float = 1e-8,
    *,
    all_sum: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """(values - mean) / sqrt(var + eps) over the positions where mask is 1; 0 elsewhere.

    values, mask: same shape, e.g. (B, T) advantages. Mean and (unbiased) variance are taken over
    the masked positions of the whole tensor, so padding does not shift them; with ``all_sum`` over
    those of every process (``masked_moments``), so each process whitens its shard with the global
    batch's statistics and the result does not depend on how the batch was split. With
    ``shift_mean=False`` the mean is added back (only the scale changes), as PPO does for rewards.
    """
    count, mean, squared_deviations = masked_moments(values, mask, all_sum=all_sum)
    var = _variance(count, squared_deviations, unbiased=True)
    whitened = _masked(values - mean, mask) * torch.rsqrt(var + eps)
    if not shift_mean:
        whitened = _masked(whitened + mean, mask)
    return whitened


# ---------------------------------------------------------------------------------------------
# KL between policy and reference
# ---------------------------------------------------------------------------------------------


def kl_estimate(logprobs: Tensor, ref_logprobs: Tensor, *, kind: Literal["k1", "k2", "k3"]) -> Tensor:
    """Per-token Monte-Carlo estimate of KL(π ‖ π_ref) from tokens sampled from the policy π.

    logprobs, ref_logprobs: same shape (e.g. (B, T)), the log-probs of the *sampled* tokens under
    the policy and the reference. Returns the same shape; mask and reduce it yourself.

    With log_ratio = logprobs - ref_logprobs = log π(x)/π_ref(x), and r = π_ref/π = exp(-log_ratio)
    as in Schulman's note "Approximating KL divergence" (2020):

        k1 = log_ratio                           unbiased, high variance, can be negative
        k2 = ½ log_ratio²                        biased (exact to second order), always >= 0
        k3 = (r - 1) - log r
           = exp(-log_ratio) - 1 + log_ratio     unbiased (E_π[r] = 1), always >= 0

    k1 is what PPO-RLHF subtracts from the reward (Ziegler et al.; InstructGPT); k3 is GRPO's KL
    penalty. Not clamped: a huge negative log_ratio makes k3 overflow, which the training loop's
    non-finite guard reports instead of hiding.
    """
    if logprobs.shape != ref_logprobs.shape:
        raise ValueError(
            f"logprobs and ref_logprobs must have the same shape, got {tuple(logprobs.shape)} and "
            f"{tuple(ref_logprobs.shape)}"
        )
    log_ratio = logprobs - ref_logprobs
    if kind == "k1":
        return log_ratio
    if kind == "k2":
        return 0.5 * log_ratio**2
    if kind == "k3":
        return torch.expm1(-log_ratio) + log_ratio
    raise ValueError(f"kind must be 'k1', 'k2' or 'k3', got {kind!r}")


# ---------------------------------------------------------------------------------------------
# Advantages
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def compute_gae(
    rewards: Tensor, values: Tensor, mask: Tensor, *, gamma: float, lam: float
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation (Schulman et al., 2016) over right-padded sequences.

    rewards, values, mask: (B, T); mask is 1 on response tokens, which are contiguous and followed
    only by padding. Returns (advantages, returns), both (B, T), 0 on padding, no gradient.

        V'_t  = values[t+1] * mask[t+1]     (0 after the last real token: the episode ends there)
        δ_t   = r_t + γ V'_t - V_t
        A_t   = (δ_t + γλ A_{t+1}) * mask_t  (A_T = 0)
        R_t   = A_t + V_t                   (the value target)

    A reverse loop over T, vectorised over B.
    """
    if not (rewards.shape == values.shape == mask.shape) or rewards.ndim != 2:
        raise ValueError(
            "rewards, values and mask must all have shape (B, T), got "
            f"{tuple(rewards.shape)}, {tuple(values.shape)}, {tuple(mask.shape)}"
        )
    keep = mask.bool()
    zero = torch.zeros((), dtype=values.dtype, device=values.device)
    rewards = torch.where(keep, rewards, zero)
    values = torch.where(keep, values, zero)
    advantages = torch.zeros_like(values)
    next_advantage = torch.zeros_like(values[:, 0])
    next_value = torch.zeros_like(values[:, 0])
    for t in reversed(range(values.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        next_advantage = torch.where(keep[:, t], delta + gamma * lam * next_advantage, zero)
        advantages[:, t] = next_advantage
        next_value = values[:, t]
    returns = torch.where(keep, advantages + values, zero)
    return advantages, returns


def group_advantages(rewards: Tensor, group_size: int, *, scale: bool = True, eps: float = 1e-4) -> Tensor:
    """GRPO advantages (Shao et al., 2024): each reward relative to the other completions of its prompt.

    rewards: (N * G,), the G completions of each prompt contiguous (prompt 0's G, then prompt 1's...).
    Returns (N * G,):

        A = (r - mean_group) / (std_group + eps)     (scale=True)
        A = r - mean_group                           (scale=False: Dr. GRPO, Liu et al., 2025)

    std_group is the *unbiased* standard deviation (÷ (G-1)), as ``torch.std`` and TRL 1.16's
    ``nanstd`` compute it; eps = 1e-4 is TRL's. A group whose rewards are all equal gets 0.
    """
    if group_size < 2:
        raise ValueError(
            f"group_size must be >= 2 (GRPO compares completions of one prompt), got {group_size}"
        )
    if rewards.ndim != 1 or rewards.numel() % group_size:
        raise ValueError(
            f"rewards must have shape (N * group_size,), got {tuple(rewards.shape)} with group_size={group_size}"
        )
    grouped = rewards.view(-1, group_size)
    advantages = grouped - grouped.mean(dim=1, keepdim=True)
    if scale:
        advantages = advantages / (grouped.std(dim=1, keepdim=True) + eps)
    return advantages.reshape(-1)


def stop_penalty(rewards: Tensor, stopped: Tensor, *, penalty: float) -> Tensor:
    """Subtract ``penalty`` from the reward of every reply that did not stop on its own.

    rewards: (B,); stopped: (B,) bool, True where the reply ended with EOS / a stop string, False
    where generation was cut at the token limit. Returns a new (B,) tensor. This teaches the policy
    to finish its replies (TRL's ``missing_eos_penalty`` in online DPO); penalty is usually > 0.
    """
    if rewards.shape != stopped.shape:
        raise ValueError(
            f"rewards and stopped must have the same shape, got {tuple(rewards.shape)} and {tuple(stopped.shape)}"
        )
    return rewards - penalty * (~stopped.bool()).to(rewards.dtype)


# ---------------------------------------------------------------------------------------------
# PPO losses
# ---------------------------------------------------------------------------------------------


def ppo_policy_loss(
    logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, mask: Tensor, *, clip_range: float
) -> tuple[Tensor, Tensor, Tensor]:
    """PPO clipped surrogate (Schulman et al., 2017), averaged over the masked tokens of the batch.

    logprobs: (B, T) policy log-probs of the sampled tokens, with gradient; old_logprobs: (B, T)
    from the policy that generated them; advantages: (B, T); mask: (B, T).
    Returns (loss, clip_fraction, approx_kl), three scalars; the last two are detached metrics.

        ρ     = exp(logprobs - old_logprobs)
        loss  = mean_masked( max(-A ρ, -A clip(ρ, 1-ε, 1+ε)) )
        clip_fraction = mean_masked( 1[-A clip(ρ) > -A ρ] )   (tokens whose gradient was clipped)
        approx_kl     = mean_masked( ½ (logprobs - old_logprobs)² )

    Aggregation: one token-level mean over the whole batch (as DAPO, and TRL's PPOTrainer before
    its removal), not a mean of per-sequence means, so long replies weigh more. Beyond the boundary on the side that would
    improve the objective (ρ > 1+ε with A > 0, ρ < 1-ε with A < 0) the gradient is zero.
    """
    if not (logprobs.shape == old_logprobs.shape == advantages.shape == mask.shape):
        raise ValueError("logprobs, old_logprobs, advantages and mask must have the same shape")
    # Zero the log-ratio on padding *before* exp: garbage there would give inf * 0 = NaN gradients.
    log_ratio = _masked(logprobs - old_logprobs, mask)
    advantages = _masked(advantages, mask)
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    with torch.no_grad():
        clip_fraction = masked_mean((clipped > unclipped).to(ratio.dtype), mask)
        approx_kl = masked_mean(0.5 * log_ratio**2, mask)
    return loss, clip_fraction, approx_kl


def ppo_value_loss(
    values: Tensor, old_values: Tensor, returns: Tensor, mask: Tensor, *, clip_range_value: float
) -> tuple[Tensor, Tensor]:
    """Clipped value loss of PPO as in OpenAI baselines and RLHF code, averaged over masked tokens.

    values: (B, T) current value predictions, with gradient; old_values: (B, T) at rollout time;
    returns: (B, T) GAE returns; mask: (B, T). Returns (loss, value_clip_fraction), scalars.

        V_clip = old_values + clip(values - old_values, -c, c)
        loss   = ½ mean_masked( max((values - R)², (V_clip - R)²) )
        value_clip_fraction = mean_masked( 1[(V_clip - R)² > (values - R)²] )   (detached)
    """
    if not (values.shape == old_values.shape == returns.shape == mask.shape):
        raise ValueError("values, old_values, returns and mask must have the same shape")
    values, old_values, returns = (_masked(x, mask) for x in (values, old_values, returns))
    values_clipped = old_values + torch.clamp(values - old_values, -clip_range_value, clip_range_value)
    unclipped = (values - returns) ** 2
    clipped = (values_clipped - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(unclipped, clipped), mask)
    with torch.no_grad():
        clip_fraction = masked_mean((clipped > unclipped).to(values.dtype), mask)
    return loss, clip_fraction


# ---------------------------------------------------------------------------------------------
# Diagnostics
# ---------------------------------------------------------------------------------------------


def entropy_from_logits(logits: Tensor, *, chunk_size: int | None = None) -> Tensor:
    """Entropy of softmax(logits) along the last axis, in nats: logits (..., V) -> (...).

        H = logsumexp(l) - Σ_v softmax(l)_v l_v

    Computed in float32 at least. ``chunk_size`` rows (of the flattened leading dims) at a time
    bounds the (rows, V) temporaries when no gradient is needed (under autograd the chunks are
    saved anyway). -inf logits (masked vocabulary) are handled: their probability is 0 and their
    0 * -inf term is never formed.
    """
    vocab = logits.shape[-1]
    flat = logits.reshape(-1, vocab)
    dtype = torch.promote_types(logits.dtype, torch.float32)
    chunks = [flat] if chunk_size is None else flat.split(chunk_size, dim=0)
    out = []
    for chunk in chunks:
        chunk = chunk.to(dtype)
        # -inf -> the most negative finite value: same softmax, no 0 * -inf = NaN.
        chunk = chunk.clamp(min=torch.finfo(dtype).min)
        lse = torch.logsumexp(chunk, dim=-1, keepdim=True)
        probs = torch.exp(chunk - lse)
        out.append(lse.squeeze(-1) - (probs * chunk).sum(dim=-1))
    return torch.cat(out).reshape(logits.shape[:-1])


@torch.no_grad()
def explained_variance(values: Tensor, returns: Tensor, mask: Tensor) -> Tensor:
    """1 - Var[returns - values] / Var[returns] over masked positions: a scalar, NaN if Var[returns] = 0.

    values, returns, mask: (B, T). 1 is a perfect value function, 0 is no better than predicting
    the mean return, negative is worse. Biased variances (the n/(n-1) factors cancel).
    """
    var_returns = masked_var(returns, mask, unbiased=False)
    var_residual = masked_var(returns - values, mask, unbiased=False)
    nan = torch.full_like(var_returns, float("nan"))
    return torch.where(var_returns > 0, 1.0 - var_residual / var_returns, nan)


# ---------------------------------------------------------------------------------------------
# KL coefficient controllers
# ---------------------------------------------------------------------------------------------


class KLController(Protocol):
    """What a PPO recipe needs from a KL controller: the current β, an update, and resume state."""

    value: float

    def update(self, current_kl: float, n_steps: int) -> None: ...

    def state_dict(self) -> dict[str, float]: ...

    def load_state_dict(self, state: dict[str, float]) -> None: ...


class FixedKLController:
    """A constant KL coefficient."""

    def __init__(self, kl_coef: float) -> None:
        self.value = float(kl_coef)

    def update(self, current_kl: float, n_steps: int) -> None:
        """No-op: the coefficient is fixed."""

    def state_dict(self) -> dict[str, float]:
        return {"value": self.value}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.value = float(state["value"])


class AdaptiveKLController:
    """Adaptive KL coefficient of Ziegler et al. (2019), "Fine-Tuning LMs from Human Preferences".

    After each batch of ``n_steps`` samples with measured KL ``current_kl``:

        e_t   = clip(current_kl / target - 1, -0.2, 0.2)
        β    <- β (1 + e_t · n_steps / horizon)

    so β grows when the policy drifts further than ``target`` nats from the reference and shrinks
    when it stays closer. ``state_dict`` holds plain floats (JSON-serialisable) for resume.
    """

    def __init__(self, init_kl_coef: float, target: float, horizon: float) -> None:
        if target <= 0 or horizon <= 0:
            raise ValueError(f"target and horizon must be > 0, got target={target}, horizon={horizon}")
        self.value = float(init_kl_coef)
        self.target = float(target)
        self.horizon = float(horizon)

    def update(self, current_kl: float, n_steps: int) -> None:
        current_kl = float(current_kl)
        if not math.isfinite(current_kl):
            raise ValueError(f"current_kl must be finite, got {current_kl}")
        proportional_error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + proportional_error * n_steps / self.horizon

    def state_dict(self) -> dict[str, float]:
        return {"value": self.value, "target": self.target, "horizon": self.horizon}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.value = float(state["value"])
        self.target = float(state["target"])
        self.horizon = float(state["horizon"])
