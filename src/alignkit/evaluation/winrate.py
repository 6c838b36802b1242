"""The ``winrate`` probe: policy against reference replies on held-out prompts, each scored by a
``rewards.Scorer`` (reward model, function or LLM judge), with the KL of the policy to the reference.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Literal

from alignkit.config.probe import ProbeThresholds
from alignkit.data.prompts import last_user_text
from alignkit.errors import ConfigError
from alignkit.evaluation.probe_results import ProbeResult, rounded, verdict
from alignkit.evaluation.probes import Prompt, as_chat, generate_replies
from alignkit.generation.types import Chat, Generation, GenerationParams, Generator
from alignkit.rewards.scorers import Scorer

# Mean per-token KL(policy || reference) estimated on the policy's own sampled replies.
KLFn = Callable[[list[Chat], list[Generation]], float]


def _outcome(policy_score: float | None, reference_score: float | None, tie_tolerance: float) -> str:
    # A reply the scorer cannot score (a reward model refuses a reply that writes template tokens as text,
    # a judge gives no number) loses to one it can: that is the failure the probe is there to show.
    if policy_score is None or reference_score is None:
        return "tie" if policy_score is reference_score else "loss" if policy_score is None else "win"
    if abs(policy_score - reference_score) <= tie_tolerance:
        return "tie"
    return "win" if policy_score > reference_score else "loss"


def _mean(values: list[float]) -> float | None:
    return rounded(sum(values) / len(values)) if values else None


def run_winrate_probe(
    policy_gen: Generator,
    reference_gen: Generator,
    scorer: Scorer,
    prompts: Sequence[Prompt],
    *,
    kl_fn: KLFn | None = None,
    n_samples: int = 1,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int = 256,
    seed: int = 0,
    tie_tolerance: float = 0.0,
    system_prompt: str | None = None,
    thresholds: ProbeThresholds | None = None,
) -> ProbeResult:
    """Policy vs reference replies on held-out prompts, each scored by ``scorer`` (any ``rewards.Scorer``:
    the reward model, function or judge that PPO/GRPO and ``prefs`` use, in one batched call per side).

    Sample ``i`` of the policy is compared with sample ``i`` of the reference for the same
    prompt; a win counts 1, a tie (scores within ``tie_tolerance``) 1/2; a reply the scorer cannot
    score loses to one it can (counted in ``unscored_policy`` / ``unscored_reference``). ``kl_fn`` receives the
    prompts (one per policy reply) and the policy's replies and returns the mean per-token
    KL(policy || reference) estimate. Sampling defaults to temperature 1, top-p 1 because that
    estimate is an expectation under the policy's own distribution: tempered or truncated
    sampling would bias it.
    """
    thresholds = thresholds or ProbeThresholds()
    if not prompts:
        raise ConfigError("the winrate probe needs at least one prompt", field="prompts")
    chats = [as_chat(p, system_prompt) for p in prompts]
    params = GenerationParams(
        max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, num_samples=n_samples, seed=seed
    )
    policy_out = generate_replies(policy_gen, chats, params)
    reference_out = generate_replies(reference_gen, chats, params)
    pairs = [
        (chat, sample, policy, reference)
        for chat, policy_replies, reference_replies in zip(chats, policy_out, reference_out, strict=True)
        for sample, (policy, reference) in enumerate(zip(policy_replies, reference_replies, strict=True))
    ]
    pair_chats = [chat for chat, _, _, _ in pairs]
    policy_scores = scorer.score(pair_chats, [policy.text for _, _, policy, _ in pairs])
    reference_scores = scorer.score(pair_chats, [reference.text for _, _, _, reference in pairs])
    rows: list[dict[str, Any]] = []
    for (chat, sample, policy, reference), policy_score, reference_score in zip(
        pairs, policy_scores, reference_scores, strict=True
    ):
        for value in (policy_score, reference_score):
            if value is not None and not math.isfinite(value):
                raise ValueError(f"scorer returned a non-finite score for prompt {last_user_text(chat)!r}")
        rows.append(
            {
                "prompt": last_user_text(chat) or "",
                "sample": sample,
                "policy_text": policy.text,
                "reference_text": reference.text,
                "policy_score": policy_score,
                "reference_score": reference_score,
                "outcome": _outcome(policy_score, reference_score, tie_tolerance),
            }
        )
    outcomes = Counter(row["outcome"] for row in rows)
    extra_failures = []
    mean_kl: float | None = None
    if kl_fn is not None:
        kl_chats = [chat for chat, out in zip(chats, policy_out, strict=True) for _ in out]
        mean_kl = float(kl_fn(kl_chats, [g for out in policy_out for g in out]))
        if not math.isfinite(mean_kl):
            # JSON cannot hold NaN/inf, and a non-finite KL means the log-probs broke.
            extra_failures.append(f"mean_kl is not finite ({mean_kl})")
            mean_kl = None
    n_pairs = len(rows)
    summary: dict[str, Any] = {
        "n_pairs": n_pairs,
        "wins": outcomes["win"],
        "ties": outcomes["tie"],
        "losses": outcomes["loss"],
        "win_rate": rounded((outcomes["win"] + 0.5 * outcomes["tie"]) / n_pairs),
        "mean_policy_score": _mean([r["policy_score"] for r in rows if r["policy_score"] is not None]),
        "mean_reference_score": _mean([r["reference_score"] for r in rows if r["reference_score"] is not None]),
        "unscored_policy": sum(r["policy_score"] is None for r in rows),
        "unscored_reference": sum(r["reference_score"] is None for r in rows),
        "mean_kl": rounded(mean_kl, 6),
        "temperature": temperature,
    }
    checks: list[tuple[str, float | None, Literal["min", "max"]]] = [
        ("win_rate", thresholds.min_win_rate, "min"),
        # A failed (non-finite) KL is already reported; do not report it twice as "not measured".
        ("mean_kl", thresholds.max_mean_kl if not extra_failures else None, "max"),
    ]
    return verdict("winrate", rows, summary, checks, extra_failures)
