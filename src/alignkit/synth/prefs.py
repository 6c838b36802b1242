"""RLAIF preference building: sample N candidates per prompt, rank them with a judge, write triples.

Judges (anything with ``score(chats, replies) -> list[float | None]``):

- ``RewardModelScorer``: a folder written by ``alignkit rm``. The reply is formatted after its prompt
  with the chat template and scored at the reply's end-of-turn token, exactly as ``alignkit score``
  does, so the written scores can be reproduced.
- ``LLMJudge``: a 1-10 rating prompt run through any ``Generator`` (a local model, or an
  OpenAI-compatible HTTP endpoint); the first integer 1..10 of the judge's answer is the score.

Per prompt, candidates are dropped (and counted by reason) in this order: empty replies, replies cut
at ``max_new_tokens`` (``drop_unfinished``), replies holding the tokenizer's special tokens (they would
corrupt the chat template), duplicates (same text after whitespace normalisation), and candidates the
judge could not score. Pairs are then ``best_vs_worst`` (one per prompt) or ``all_pairs``; a pair is kept
when its score gap is > 0 and >= ``min_gap``; equal scores are ties, dropped and counted.

Departures from the RLAIF papers (Bai et al., 2022; Lee et al., 2023): the LLM judge rates each reply
on its own (pointwise 1-10) rather than comparing two replies in one prompt, so N candidates cost N
judge calls, not N(N-1)/2, and position bias cannot arise; the price is coarser scores and more ties.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from alignkit.config.synth import PrefsConfig
from alignkit.data.prompts import read_prompt_chats
from alignkit.errors import AlignkitError
from alignkit.generation.http import OpenAICompatibleGenerator
from alignkit.generation.local import LocalGenerator
from alignkit.generation.types import Chat, GenerationParams, Generator
from alignkit.io import atomic_write_text
from alignkit.models.loader import load_from_fields
from alignkit.models.reward_head import load_reward_model
from alignkit.result import CommandResult, say
from alignkit.rewards.scorers import LLMJudge, RewardModelScorer, Scorer


@dataclass
class PrefsReport:
    """What happened to every prompt and candidate."""

    prompts: int = 0
    candidates: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    ties: int = 0
    below_gap: int = 0
    prompts_without_pair: int = 0
    pairs: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "dropped": dict(self.dropped)}












def select_pairs(
    scored: Sequence[tuple[str, float]], *, mode: str, min_gap: float
) -> tuple[list[tuple[tuple[str, float], tuple[str, float]]], int, int]:
    """(chosen, rejected) pairs from scored candidates, and the ties and below-gap pairs dropped.

    ``scored``: (reply, score) of distinct candidates. A pair is kept when its gap is > 0 and >= min_gap.
    """
    if len(scored) < 2:
        return [], 0, 0
    ranked = sorted(scored, key=lambda item: -item[1])  # stable: equal scores keep sampling order
    if mode == "best_vs_worst":
        candidates = [(ranked[0], min(scored, key=lambda item: item[1]))]  # first-sampled best and worst
    else:
        candidates = [(ranked[i], ranked[j]) for i in range(len(ranked)) for j in range(i + 1, len(ranked))]
    kept, ties, below_gap = [], 0, 0
    for better, worse in candidates:
        gap = better[1] - worse[1]
        if gap == 0:
            ties += 1
        elif gap < min_gap:
            below_gap += 1
        else:
            kept.append((better, worse))
    return kept, ties, below_gap


def _normalised(text: str) -> str:
    return " ".join(text.split())


def build_preferences(
    chats: list[Chat],
    policy: Generator,
    judge: Scorer,
    *,
    params: GenerationParams,
    mode: str = "best_vs_worst",
    min_gap: float = 0.0,
    drop_unfinished: bool = True,
    special_tokens: Sequence[str] = (),
) -> tuple[list[dict[str, Any]], PrefsReport]:
    """Samples ``params.num_samples`` replies per chat, filters and scores them, and pairs them up."""
    report = PrefsReport(prompts=len(chats))
    generations = policy.chat(chats, params)
    survivors: list[list[str]] = []
    for samples in generations:
        kept: list[str] = []
        seen: set[str] = set()
        for sample in samples:
            report.candidates += 1
            text = sample.text.strip()
            reason = None
            if not text:
                reason = "empty"
            elif drop_unfinished and not sample.stopped:
                reason = "unfinished"
            elif any(token in text for token in special_tokens):
                reason = "special_tokens"
            elif _normalised(text) in seen:
                reason = "duplicate"
            if reason:
                report.dropped[reason] += 1
                continue
            seen.add(_normalised(text))
            kept.append(text)
        survivors.append(kept)
    flat = [(owner, text) for owner, texts in enumerate(survivors) for text in texts]
    scores = judge.score([chats[owner] for owner, _ in flat], [text for _, text in flat])
    scored: list[list[tuple[str, float]]] = [[] for _ in chats]
    for (owner, text), score in zip(flat, scores, strict=True):
        if score is None:
            report.dropped["unscored"] += 1
        else:
            scored[owner].append((text, float(score)))
    rows: list[dict[str, Any]] = []
    for chat, candidates in zip(chats, scored, strict=True):
        pairs, ties, below_gap = select_pairs(candidates, mode=mode, min_gap=min_gap)
        report.ties += ties
        report.below_gap += below_gap
        report.prompts_without_pair += not pairs
        prompt: Any = chat[0]["content"] if len(chat) == 1 and chat[0]["role"] == "user" else chat
        for (chosen, chosen_score), (rejected, rejected_score) in pairs:
            rows.append(
                {
                    "prompt": prompt,
                    "chosen": chosen,
                    "rejected": rejected,
                    "chosen_score": chosen_score,
                    "rejected_score": rejected_score,
                }
            )
    report.pairs = len(rows)
    return rows, report


def make_judge(cfg: PrefsConfig, policy_generator: Any) -> Scorer:
    """The configured judge; a local LLM judge naming the policy's own model reuses its weights."""

    judge = cfg.judge
    if judge.kind == "reward_model":
        if not judge.reward_model:
            raise AlignkitError(
                "judge.kind=reward_model needs judge.reward_model=DIR (from alignkit rm)",
                field="judge.reward_model",
            )
        return RewardModelScorer(
            load_reward_model(judge.reward_model, device=cfg.device, dtype=cfg.dtype),
            batch_size=judge.batch_size,
        )
    if judge.url:
        if not judge.api_model:
            raise AlignkitError(
                "judge.url needs judge.api_model (the model name the endpoint serves)",
                field="judge.api_model",
            )
        generator: Generator = OpenAICompatibleGenerator(
            judge.url, judge.api_model, api_key_env=judge.api_key_env
        )
    elif judge.model is None or (judge.model == cfg.model and not cfg.adapter):
        generator = policy_generator
    else:
        loaded = load_from_fields(cfg, spec=judge.model)
        generator = LocalGenerator(loaded.model, loaded.tokenizer, batch_size=judge.batch_size)
    return LLMJudge(generator, prompt=judge.prompt, max_new_tokens=judge.max_new_tokens)


def run_prefs(cfg: PrefsConfig) -> PrefsReport:
    """Samples, judges and writes the triples to ``cfg.out`` (and the report to ``<out>.report.json``)."""

    if not cfg.prompts or not cfg.out:
        raise AlignkitError(
            "expected prompts=FILE and out=FILE.jsonl", field="prompts" if not cfg.prompts else "out"
        )
    chats = read_prompt_chats(cfg.prompts, system=cfg.system)
    loaded = load_from_fields(cfg)
    policy = LocalGenerator(loaded.model, loaded.tokenizer, batch_size=cfg.batch_size)
    judge = make_judge(cfg, policy)
    params = dataclasses.replace(GenerationParams.from_section(cfg.generation), num_samples=cfg.num_candidates)
    rows, report = build_preferences(
        chats,
        policy,
        judge,
        params=params,
        mode=cfg.pairs,
        min_gap=cfg.min_gap,
        drop_unfinished=cfg.drop_unfinished,
        special_tokens=[t for t in loaded.tokenizer.all_special_tokens if t],
    )
    atomic_write_text(cfg.out, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    atomic_write_text(f"{cfg.out}.report.json", json.dumps(report.as_dict(), indent=2))
    return report


def prefs_command(cfg: PrefsConfig, progress: Callable[[str], None] | None = None) -> CommandResult:
    """``alignkit prefs``: the pairs file as the output, the pair count for a pipeline stage."""
    report = run_prefs(cfg)
    summary = (f"wrote {report.pairs} pairs from {report.prompts} prompts to {cfg.out} "
               f"(dropped {dict(report.dropped)}, ties {report.ties}, below min_gap {report.below_gap})")
    # No pairs is nothing to train on: a failure, whatever the reason (every pair tied or under min_gap).
    problems = [summary] if report.pairs == 0 else []
    return CommandResult(output=cfg.out, outputs={"pairs": report.pairs}, code=1 if problems else 0,
                         problems=problems, show=say(summary + ("; no pairs: exit 1" if problems else "")))
