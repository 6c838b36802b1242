"""Our loss functions equal TRL 1.16's on the same inputs.

TRL computes its losses inside trainer methods. Building a trainer needs a model, a dataset and a
tokenizer, so instead each test calls TRL's *unbound* method with a ``SimpleNamespace`` standing in
for ``self`` (holding only the attributes the method reads) and, where the method runs a forward
pass, a stub model that returns per-token log-probs we choose. The loss code that runs is TRL's own.
Everything is float64 so the comparison at atol 1e-6 tests the formula, not rounding.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest
import torch

pytest.importorskip("trl")

with warnings.catch_warnings():  # "APIs here are unstable": that is why we pin their formulas here
    warnings.simplefilter("ignore")
    from trl.experimental.cpo.cpo_trainer import CPOTrainer
    from trl.experimental.orpo.orpo_trainer import ORPOTrainer
from trl.trainer.dpo_trainer import DPOTrainer  # noqa: E402
from trl.trainer.reward_trainer import RewardTrainer  # noqa: E402
from trl.trainer.utils import entropy_from_logits as trl_entropy_from_logits  # noqa: E402
from trl.trainer.utils import nanstd  # noqa: E402

from alignkit.losses.preference import dpo_loss, ipo_loss, orpo_loss, simpo_loss  # noqa: E402
from alignkit.losses.reward import bradley_terry_loss  # noqa: E402
from alignkit.losses.rl import entropy_from_logits, group_advantages  # noqa: E402

ATOL = 1e-6
B = 6
PROMPT_LEN = 3


def _identity(x: Any) -> Any:
    return x


def _accelerator() -> SimpleNamespace:
    return SimpleNamespace(device=torch.device("cpu"), gather=_identity, gather_for_metrics=_identity)


def _metrics() -> dict[str, defaultdict[str, list[float]]]:
    return {"train": defaultdict(list), "eval": defaultdict(list)}


def _random_pairs(seed: int) -> dict[str, torch.Tensor]:
    """Summed log-probs for B pairs and completion lengths 1..9 tokens."""
    g = torch.Generator().manual_seed(seed)

    def logps() -> torch.Tensor:
        return -torch.rand(B, generator=g, dtype=torch.float64) * 40 - 1

    return {
        "policy_chosen": logps(),
        "policy_rejected": logps(),
        "ref_chosen": logps(),
        "ref_rejected": logps(),
        "chosen_lengths": torch.randint(1, 10, (B,), generator=g),
        "rejected_lengths": torch.randint(1, 10, (B,), generator=g),
    }


# --------------------------------------------------------------------------------- DPOTrainer


class _StubLM:
    """Stands in for the policy inside ``DPOTrainer._compute_loss``: returns fixed per-token log-probs.

    TRL's fused LM head returns ``log_probs`` of shape (2B, T-1) (shifted), zero off the completion,
    which TRL sums per row. We put each completion's whole summed log-prob on its first completion
    token, so TRL's sum is exact.
    """

    training = True

    def __init__(self, per_token_logps: torch.Tensor) -> None:
        self.per_token_logps = per_token_logps

    def __call__(self, **kwargs: Any) -> SimpleNamespace:
        zeros = torch.zeros_like(self.per_token_logps)
        return SimpleNamespace(
            log_probs=self.per_token_logps,
            entropy=zeros,
            mean_logits=zeros,
            is_top1=torch.zeros_like(self.per_token_logps, dtype=torch.bool),
        )


def _trl_dpo_per_example(pairs: dict[str, torch.Tensor], *, loss_type: str, beta: float) -> torch.Tensor:
    """Run TRL's ``DPOTrainer._compute_loss`` once per example (it returns the batch mean)."""
    losses = []
    for i in range(B):
        lengths = torch.stack([pairs["chosen_lengths"][i], pairs["rejected_lengths"][i]])  # (2,)
        seq_len = PROMPT_LEN + int(lengths.max())
        positions = torch.arange(seq_len)
        completion_mask = ((positions >= PROMPT_LEN) & (positions < PROMPT_LEN + lengths[:, None])).long()
        # Shifted (T-1) per-token log-probs: position j predicts token j+1; the first completion
        # token (index PROMPT_LEN) is predicted at shifted index PROMPT_LEN - 1.
        per_token = torch.zeros(2, seq_len - 1, dtype=torch.float64)
        per_token[0, PROMPT_LEN - 1] = pairs["policy_chosen"][i]
        per_token[1, PROMPT_LEN - 1] = pairs["policy_rejected"][i]
        stub = _StubLM(per_token)
        self_ = SimpleNamespace(
            model=stub,
            accelerator=_accelerator(),
            aux_loss_enabled=False,
            ld_alpha=None,
            precompute_ref_logps=True,
            f_divergence_type="reverse_kl",
            loss_types=[loss_type],
            loss_weights=[1.0],
            beta=beta,
            label_smoothing=0.0,
            use_weighting=False,
            _metrics=_metrics(),
            _total_train_tokens=0,
            _tp_size=1,
            args=SimpleNamespace(gradient_checkpointing_kwargs=None),
        )
        inputs = {
            "input_ids": torch.zeros(2, seq_len, dtype=torch.long),
            "attention_mask": torch.ones(2, seq_len, dtype=torch.long),
            "completion_mask": completion_mask,
            "ref_chosen_logps": pairs["ref_chosen"][i : i + 1],
            "ref_rejected_logps": pairs["ref_rejected"][i : i + 1],
        }
        loss = DPOTrainer._compute_loss(self_, stub, inputs, return_outputs=False)  # type: ignore[arg-type]
        losses.append(loss)
        # TRL's logged rewards are β (π - r) on *summed* log-probs, for every loss type.
        expected_reward = beta * (pairs["policy_chosen"][i] - pairs["ref_chosen"][i])
        assert self_._metrics["train"]["rewards/chosen"][0] == pytest.approx(expected_reward.item(), abs=ATOL)
    return torch.stack(losses)


@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_dpo_sigmoid_matches_trl(beta: float) -> None:
    pairs = _random_pairs(0)
    ours = dpo_loss(
        pairs["policy_chosen"],
        pairs["policy_rejected"],
        pairs["ref_chosen"],
        pairs["ref_rejected"],
        beta=beta,
    )
    trl = _trl_dpo_per_example(pairs, loss_type="sigmoid", beta=beta)
    torch.testing.assert_close(ours.losses, trl, atol=ATOL, rtol=0)


@pytest.mark.parametrize("beta", [0.1, 1.0])
def test_ipo_matches_trl_with_length_averaged_logps(beta: float) -> None:
    """TRL divides the summed log-ratios by the completion length; we are given averaged log-probs."""
    pairs = _random_pairs(1)
    lc, lr = pairs["chosen_lengths"], pairs["rejected_lengths"]
    ours = ipo_loss(
        pairs["policy_chosen"] / lc,
        pairs["policy_rejected"] / lr,
        pairs["ref_chosen"] / lc,
        pairs["ref_rejected"] / lr,
        beta=beta,
    )
    trl = _trl_dpo_per_example(pairs, loss_type="ipo", beta=beta)
    torch.testing.assert_close(ours.losses, trl, atol=ATOL, rtol=0)


# --------------------------------------------------------------------------------- CPOTrainer


def _cpo_self(*, loss_type: str, beta: float, label_smoothing: float = 0.0, simpo_gamma: float = 0.5) -> Any:
    return SimpleNamespace(
        alpha=0.0,
        beta=beta,
        loss_type=loss_type,
        label_smoothing=label_smoothing,
        simpo_gamma=simpo_gamma,
        accelerator=_accelerator(),
    )


@pytest.mark.parametrize("label_smoothing", [0.1, 0.3])
def test_cdpo_matches_trl(label_smoothing: float) -> None:
    """TRL 1.16's DPOTrainer ignores label_smoothing for "sigmoid"; its cDPO formula lives in
    ``CPOTrainer.cpo_loss(loss_type="sigmoid")``, which is reference-free: feeding it the policy /
    reference log-ratios as "log-probs" gives exactly conservative DPO."""
    pairs = _random_pairs(2)
    chosen_logratios = pairs["policy_chosen"] - pairs["ref_chosen"]
    rejected_logratios = pairs["policy_rejected"] - pairs["ref_rejected"]
    ours = dpo_loss(
        pairs["policy_chosen"],
        pairs["policy_rejected"],
        pairs["ref_chosen"],
        pairs["ref_rejected"],
        beta=0.2,
        label_smoothing=label_smoothing,
    )
    self_ = _cpo_self(loss_type="sigmoid", beta=0.2, label_smoothing=label_smoothing)
    trl_losses, trl_chosen, trl_rejected = CPOTrainer.cpo_loss(self_, chosen_logratios, rejected_logratios)
    torch.testing.assert_close(ours.losses, trl_losses, atol=ATOL, rtol=0)
    torch.testing.assert_close(ours.chosen_rewards, trl_chosen, atol=ATOL, rtol=0)
    torch.testing.assert_close(ours.rejected_rewards, trl_rejected, atol=ATOL, rtol=0)


@pytest.mark.parametrize(
    ("beta", "gamma", "label_smoothing"), [(2.0, 0.5, 0.0), (2.5, 1.4, 0.0), (2.0, 1.0, 0.2)]
)
def test_simpo_matches_trl(beta: float, gamma: float, label_smoothing: float) -> None:
    """TRL's CPOTrainer gets length-averaged log-probs for "simpo"; our gamma is its ``simpo_gamma``."""
    pairs = _random_pairs(3)
    lc, lr = pairs["chosen_lengths"], pairs["rejected_lengths"]
    ours = simpo_loss(
        pairs["policy_chosen"],
        pairs["policy_rejected"],
        chosen_lengths=lc,
        rejected_lengths=lr,
        beta=beta,
        gamma=gamma,
        label_smoothing=label_smoothing,
    )
    self_ = _cpo_self(loss_type="simpo", beta=beta, label_smoothing=label_smoothing, simpo_gamma=gamma)
    trl_losses, trl_chosen, trl_rejected = CPOTrainer.cpo_loss(
        self_, pairs["policy_chosen"] / lc, pairs["policy_rejected"] / lr
    )
    torch.testing.assert_close(ours.losses, trl_losses, atol=ATOL, rtol=0)
    torch.testing.assert_close(ours.chosen_rewards, trl_chosen, atol=ATOL, rtol=0)
    torch.testing.assert_close(ours.rejected_rewards, trl_rejected, atol=ATOL, rtol=0)


# -------------------------------------------------------------------------------- ORPOTrainer


def test_orpo_matches_trl() -> None:
    """TRL: loss = nll - mean(β log σ(log_odds)) with one batch NLL; ours with that scalar NLL, averaged."""
    pairs = _random_pairs(4)
    # Average log-probs in (-2, 0): include values near 0, where log(1 - e^a) needs care.
    lc, lr = pairs["chosen_lengths"], pairs["rejected_lengths"]
    chosen = pairs["policy_chosen"] / 21 * lc / lc.max()
    rejected = pairs["policy_rejected"] / 21 * lr / lr.max()
    chosen[0] = -1e-7 * lc[0]
    batch_nll = torch.tensor(1.234, dtype=torch.float64)
    ours = orpo_loss(chosen, rejected, chosen_lengths=lc, rejected_lengths=lr, chosen_nll=batch_nll, beta=0.1)
    self_ = SimpleNamespace(beta=0.1, accelerator=_accelerator())
    trl_losses, trl_chosen, trl_rejected, _, _ = ORPOTrainer.odds_ratio_loss(
        self_, chosen / lc, rejected / lr
    )
    trl_batch_loss = batch_nll - trl_losses.mean()  # ORPOTrainer.get_batch_loss_metrics
    torch.testing.assert_close(ours.losses.mean(), trl_batch_loss, atol=ATOL, rtol=0)
    # TRL casts to float32 inside odds_ratio_loss.
    torch.testing.assert_close(ours.losses, batch_nll - trl_losses, atol=ATOL, rtol=0, check_dtype=False)
    torch.testing.assert_close(ours.chosen_rewards, trl_chosen, atol=ATOL, rtol=0, check_dtype=False)
    torch.testing.assert_close(ours.rejected_rewards, trl_rejected, atol=ATOL, rtol=0, check_dtype=False)


# ------------------------------------------------------------------------------ RewardTrainer


class _StubRewardModel:
    training = True

    def __init__(self, rewards: torch.Tensor) -> None:
        self.rewards = rewards  # (2B,): chosen then rejected, as TRL's collator stacks them

    def __call__(self, **kwargs: Any) -> SimpleNamespace:
        return SimpleNamespace(logits=self.rewards[:, None])


def _trl_reward_loss(
    chosen: torch.Tensor, rejected: torch.Tensor, *, margin: torch.Tensor | None, center: float | None
) -> torch.Tensor:
    stub = _StubRewardModel(torch.cat([chosen, rejected]))
    self_ = SimpleNamespace(
        model=stub,
        args=SimpleNamespace(center_rewards_coefficient=center),
        accelerator=_accelerator(),
        _metrics=_metrics(),
        _total_train_tokens=0,
        _tp_size=1,
    )
    inputs: dict[str, Any] = {"attention_mask": torch.ones(2 * chosen.numel(), 4, dtype=torch.long)}
    if margin is not None:
        inputs["margin"] = margin
    return RewardTrainer.compute_loss(self_, stub, inputs)  # type: ignore[arg-type]


@pytest.mark.parametrize("use_margin", [False, True])
@pytest.mark.parametrize("center", [None, 0.01])
def test_bradley_terry_matches_trl(use_margin: bool, center: float | None) -> None:
    g = torch.Generator().manual_seed(5)
    chosen = torch.randn(B, generator=g, dtype=torch.float64) * 2
    rejected = torch.randn(B, generator=g, dtype=torch.float64) * 2
    margin = torch.rand(B, generator=g, dtype=torch.float64) if use_margin else None
    ours = bradley_terry_loss(chosen, rejected, margin=margin, center_rewards_coefficient=center or 0.0)
    # TRL returns the batch mean; compare it, and each example on its own.
    torch.testing.assert_close(
        ours.mean(), _trl_reward_loss(chosen, rejected, margin=margin, center=center), atol=ATOL, rtol=0
    )
    for i in range(B):
        one = None if margin is None else margin[i : i + 1]
        trl_i = _trl_reward_loss(chosen[i : i + 1], rejected[i : i + 1], margin=one, center=center)
        torch.testing.assert_close(ours[i], trl_i, atol=ATOL, rtol=0)


# --------------------------------------------------------------------------------- GRPO / utils


def test_group_advantages_match_trl_grpo_formula() -> None:
    """GRPOTrainer (scale_rewards="group"): (r - mean) / (nanstd + 1e-4), nanstd with Bessel's correction."""
    g = torch.Generator().manual_seed(6)
    rewards = torch.randn(5 * 4, generator=g, dtype=torch.float64)
    grouped = rewards.view(-1, 4)
    mean = grouped.mean(dim=1).repeat_interleave(4)
    std = nanstd(grouped, dim=1).repeat_interleave(4)
    trl_advantages = (rewards - mean) / (std + 1e-4)
    torch.testing.assert_close(group_advantages(rewards, 4), trl_advantages, atol=ATOL, rtol=0)


def test_entropy_matches_trl() -> None:
    logits = torch.randn(2, 7, 33, generator=torch.Generator().manual_seed(7), dtype=torch.float64) * 3
    torch.testing.assert_close(
        entropy_from_logits(logits, chunk_size=5),
        trl_entropy_from_logits(logits, chunk_size=5),
        atol=ATOL,
        rtol=0,
    )
