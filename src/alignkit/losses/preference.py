"""Pairwise preference losses: DPO, conservative DPO, IPO, SimPO, ORPO.

Every function is pure: it takes per-example log-probs of shape (B,) (the sum of the per-token
log-probs of a completion, unless a docstring says otherwise) and returns a ``PreferenceLossOutput``
of per-example losses (B,) and the implicit rewards (B,), detached, for logging. Callers reduce
(usually ``losses.mean()``), so the reduction can be checked for padding / sharding invariance.

Notation used in the docstrings (all shapes (B,)):

    πc, πr   policy log-probs of the chosen / rejected completion
    rc, rr   reference log-probs of the chosen / rejected completion
    h        (πc - rc) - (πr - rr), the difference of the two log-ratios
    σ        the logistic sigmoid; -log σ(x) = softplus(-x) is evaluated with ``F.logsigmoid``
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "PreferenceLossOutput",
    "dpo_loss",
    "ipo_loss",
    "orpo_loss",
    "simpo_loss",
]


class PreferenceLossOutput(NamedTuple):
    """Per-example preference loss and the implicit rewards it implies.

    losses: (B,) per-example losses, differentiable; the caller averages.
    chosen_rewards: (B,) implicit reward of the chosen completion, detached.
    rejected_rewards: (B,) implicit reward of the rejected completion, detached.
    """

    losses: Tensor
    chosen_rewards: Tensor
    rejected_rewards: Tensor


def _check_same_shape(**tensors: Tensor) -> None:
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    first = next(iter(shapes.values()))
    if len(first) != 1 or any(s != first for s in shapes.values()):
        raise ValueError(f"expected tensors of the same shape (B,), got {shapes}")


def _check_beta(beta: float) -> None:
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")


def _check_label_smoothing(label_smoothing: float) -> None:
    # At ε = 0.5 the two terms cancel and the gradient is zero; above it the labels are flipped.
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")


def _smoothed_logistic_loss(logits: Tensor, label_smoothing: float) -> Tensor:
    """-(1-ε) log σ(z) - ε log σ(-z): the logistic loss with a probability ε that the label is flipped."""
    losses = -F.logsigmoid(logits)
    if label_smoothing:
        losses = (1.0 - label_smoothing) * losses - label_smoothing * F.logsigmoid(-logits)
    return losses


def dpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    *,
    beta: float,
    label_smoothing: float = 0.0,
) -> PreferenceLossOutput:
    """Sigmoid DPO (Rafailov et al., 2023), or conservative DPO (cDPO) when ``label_smoothing`` > 0.

    Inputs are (B,) summed log-probs of each completion under the policy and the reference.

        h      = (πc - rc) - (πr - rr)
        loss   = -(1-ε) log σ(β h) - ε log σ(-β h)        (ε = label_smoothing; ε = 0 is plain DPO)
        reward = β (π - r)                                 (chosen and rejected, detached)

    cDPO (Mitchell, 2023) treats ε as the probability that a preference label is flipped. With
    policy == reference, h = 0 and the loss is log 2 for every β and ε.

    Note: TRL 1.16's ``DPOTrainer`` no longer applies ``label_smoothing`` to ``loss_type="sigmoid"``
    (it only feeds "robust" and "exo_pair"); cDPO there is the reference-free ``CPOTrainer`` formula
    applied to log-ratios, which is what this function computes.
    """
    _check_same_shape(
        policy_chosen_logps=policy_chosen_logps,
        policy_rejected_logps=policy_rejected_logps,
        ref_chosen_logps=ref_chosen_logps,
        ref_rejected_logps=ref_rejected_logps,
    )
    _check_beta(beta)
    _check_label_smoothing(label_smoothing)
    chosen_logratios = policy_chosen_logps - ref_chosen_logps
    rejected_logratios = policy_rejected_logps - ref_rejected_logps
    logits = beta * (chosen_logratios - rejected_logratios)
    return PreferenceLossOutput(
        losses=_smoothed_logistic_loss(logits, label_smoothing),
        chosen_rewards=beta * chosen_logratios.detach(),
        rejected_rewards=beta * rejected_logratios.detach(),
    )


def ipo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    *,
    beta: float,
) -> PreferenceLossOutput:
    """IPO (Azar et al., 2023, Eq. 17): a squared loss that regresses h onto 1/(2β).

        h      = (πc - rc) - (πr - rr)
        loss   = (h - 1/(2β))²                             (β is the paper's τ)
        reward = β (π - r)                                 (detached)

    The function uses whatever log-probs it is given. To match the paper's reported results and
    TRL, the caller passes **length-averaged** log-probs (sum over completion tokens / number of
    completion tokens), for the policy and the reference alike: with summed log-probs, h grows with
    the completion length and the fixed target 1/(2β) means something different for every length.
    TRL's ``DPOTrainer(loss_type="ipo")`` divides the summed log-ratios by the completion length
    itself, which is the same as averaging each log-prob first.
    """
    _check_same_shape(
        policy_chosen_logps=policy_chosen_logps,
        policy_rejected_logps=policy_rejected_logps,
        ref_chosen_logps=ref_chosen_logps,
        ref_rejected_logps=ref_rejected_logps,
    )
    _check_beta(beta)
    chosen_logratios = policy_chosen_logps - ref_chosen_logps
    rejected_logratios = policy_rejected_logps - ref_rejected_logps
    h = chosen_logratios - rejected_logratios
    return PreferenceLossOutput(
        losses=(h - 1.0 / (2.0 * beta)) ** 2,
        chosen_rewards=beta * chosen_logratios.detach(),
        rejected_rewards=beta * rejected_logratios.detach(),
    )


def _lengths_as(lengths: Tensor | float, like: Tensor, name: str) -> Tensor:
    # At least float32: bfloat16 cannot even represent the integer 257.
    dtype = torch.promote_types(like.dtype, torch.float32)
    out = torch.as_tensor(lengths, device=like.device).to(dtype)
    if out.ndim != 0 and out.shape != like.shape:
        raise ValueError(f"{name} must be a scalar or have shape {tuple(like.shape)}, got {tuple(out.shape)}")
    if bool((out < 1).any()):
        raise ValueError(f"{name} must be >= 1 (a completion has at least one token)")
    return out


def simpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    *,
    chosen_lengths: Tensor,
    rejected_lengths: Tensor,
    beta: float,
    gamma: float,
    label_smoothing: float = 0.0,
) -> PreferenceLossOutput:
    """SimPO (Meng et al., 2024): reference-free, length-normalised, with a target margin γ.

    Inputs: (B,) summed policy log-probs and (B,) completion lengths (number of completion tokens).

        ac, ar = πc / |yc|, πr / |yr|                      (average log-prob per token)
        z      = β (ac - ar) - γ
        loss   = -(1-ε) log σ(z) - ε log σ(-z)             (ε = label_smoothing, 0 in the paper)
        reward = β ac, β ar                                (detached; γ is not subtracted)

    Mapping to TRL 1.16 (``trl.experimental.cpo.CPOTrainer(loss_type="simpo")``): TRL computes
    ``β · ((ac - ar) - simpo_gamma / β)``, so ``gamma`` here **is** TRL's ``simpo_gamma`` (the paper's
    γ, not the γ/β ratio that the SimPO authors' own code calls ``gamma_beta_ratio``; there
    γ = gamma_beta_ratio · β). TRL's ``cpo_alpha`` (default 1.0) adds ``cpo_alpha · NLL(chosen)`` to the
    batch loss ("CPO-SimPO"); the paper's SimPO is ``cpo_alpha=0``. To reproduce CPO-SimPO, add
    ``cpo_alpha * chosen_nll`` to these losses.
    """
    _check_same_shape(policy_chosen_logps=policy_chosen_logps, policy_rejected_logps=policy_rejected_logps)
    _check_beta(beta)
    _check_label_smoothing(label_smoothing)
    chosen_avg = policy_chosen_logps / _lengths_as(chosen_lengths, policy_chosen_logps, "chosen_lengths")
    rejected_avg = policy_rejected_logps / _lengths_as(
        rejected_lengths, policy_rejected_logps, "rejected_lengths"
    )
    logits = beta * (chosen_avg - rejected_avg) - gamma
    return PreferenceLossOutput(
        losses=_smoothed_logistic_loss(logits, label_smoothing),
        chosen_rewards=beta * chosen_avg.detach(),
        rejected_rewards=beta * rejected_avg.detach(),
    )


_MINUS_LN2 = -0.6931471805599453


def _log1mexp(x: Tensor) -> Tensor:
    """log(1 - exp(x)) for x <= 0, accurate on the whole range (Mächler, 2012).

    For x close to 0, 1 - exp(x) cancels: use log(-expm1(x)). For very negative x, expm1 rounds to
    -1: use log1p(-exp(x)). x is clamped below 0 so that a probability of exactly 1 (x = 0) gives a
    large finite value rather than -inf, and neither ``torch.where`` branch produces inf/NaN
    gradients.
    """
    x = x.clamp(max=-torch.finfo(x.dtype).eps)
    return torch.where(x < _MINUS_LN2, torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))


def orpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    *,
    chosen_lengths: Tensor,
    rejected_lengths: Tensor,
    chosen_nll: Tensor | float,
    beta: float,
) -> PreferenceLossOutput:
    """ORPO (Hong et al., 2024): SFT NLL on the chosen completion plus an odds-ratio penalty.

    Inputs: (B,) summed policy log-probs, (B,) completion lengths, and ``chosen_nll``, the SFT
    negative log-likelihood of the chosen completion, (B,) or a scalar (usually the per-token mean,
    i.e. ``-policy_chosen_logps / chosen_lengths``).

        ac, ar   = πc / |yc|, πr / |yr|                    (average log-prob per token, <= 0)
        odds(a)  = exp(a) / (1 - exp(a))
        log_odds = (ac - ar) - (log(1 - exp(ac)) - log(1 - exp(ar)))
        loss     = chosen_nll - β log σ(log_odds)          (β is the paper's λ)
        reward   = β ac, β ar                              (detached, as TRL logs them)

    Computed in float32 at least (exp of an average log-prob near 0 needs the precision), with a
    stable log(1 - exp(a)). TRL 1.16 (``trl.experimental.orpo``) uses one NLL for the whole batch
    (the token mean over all chosen tokens of the batch); pass that scalar as ``chosen_nll`` to get
    TRL's batch loss from ``losses.mean()``. TRL writes the weight as ``beta``, the paper as λ.
    """
    _check_same_shape(policy_chosen_logps=policy_chosen_logps, policy_rejected_logps=policy_rejected_logps)
    _check_beta(beta)
    dtype = torch.promote_types(policy_chosen_logps.dtype, torch.float32)
    chosen_avg = policy_chosen_logps.to(dtype) / _lengths_as(
        chosen_lengths, policy_chosen_logps, "chosen_lengths"
    )
    rejected_avg = policy_rejected_logps.to(dtype) / _lengths_as(
        rejected_lengths, policy_rejected_logps, "rejected_lengths"
    )
    nll = torch.as_tensor(chosen_nll, device=chosen_avg.device).to(dtype)
    if nll.ndim != 0 and nll.shape != chosen_avg.shape:
        raise ValueError(
            f"chosen_nll must be a scalar or have shape {tuple(chosen_avg.shape)}, got {tuple(nll.shape)}"
        )
    log_odds = (chosen_avg - rejected_avg) - (_log1mexp(chosen_avg) - _log1mexp(rejected_avg))
    return PreferenceLossOutput(
        losses=nll - beta * F.logsigmoid(log_odds),
        chosen_rewards=beta * chosen_avg.detach(),
        rejected_rewards=beta * rejected_avg.detach(),
    )
