"""Reward model training (Bradley-Terry) and scoring, read top to bottom.

1. Load the causal LM (LoRA by default, or full; optionally from an SFT adapter) and put a scalar
   head on its last hidden state (``models/reward_head.py``); the head is always trainable.
2. Load preference pairs with the model's chat template; refuse data lint blocks.
3. Train with the shared loop. A micro-batch of B pairs is one packed row
   ``[chosen_1..chosen_B, rejected_1..rejected_B]``; each score is read at the last position of its
   sequence (the reply's end-of-turn token). Loss: ``-log σ(r_c - r_r - m) + c (r_c + r_r)²`` per pair
   (m: the record's ``margin`` column when ``use_margin``; c: ``center_rewards_coefficient``),
   averaged over the pairs of the global batch.
4. Save the head + adapter (or full trunk) as safetensors with ``reward_config.json``;
   ``load_reward_model(folder)`` restores it, ``alignkit score`` uses it.

Departures from TRL's ``RewardTrainer``: the score is read at the end-of-turn token of the reply
(the template's trailing newline is cut off), found by position; chosen and rejected go through one
packed forward instead of a padded batch; the head has no bias (as in transformers).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from alignkit.config.base import config_hash, config_to_yaml
from alignkit.config.recipes import RewardConfig, ScoreConfig
from alignkit.data.collate import pack, pad
from alignkit.data.dataset import PreferenceExample, load_preference_data
from alignkit.data.formatting import format_chat
from alignkit.data.readers import read_records
from alignkit.data.records import load_records
from alignkit.errors import AlignkitError, DataError
from alignkit.io import atomic_write_text
from alignkit.losses.reward import bradley_terry_loss, pairwise_accuracy
from alignkit.models.loader import resolve_device
from alignkit.models.reward_head import (
    RewardModel,
    load_reward_model,
    reply_end,
    save_reward_model,
    score_sequences,
)
from alignkit.result import CommandResult, say
from alignkit.training.checkpoint import write_run_manifest
from alignkit.training.distributed import leaves_its_group, setup_distributed
from alignkit.training.loop import LoopResult, run_loop
from alignkit.training.parallel import gather_for_export
from alignkit.training.setup import lint_or_refuse, load_train_eval, prepare_model


def pair_sequences(pairs: Sequence[PreferenceExample]) -> list[tuple[list[int], list[int]]]:
    """All chosen sequences, then all rejected ones, each cut after its reply's last token."""
    chosen = [reply_end(p.chosen_ids, p.chosen_mask) for p in pairs]
    rejected = [reply_end(p.rejected_ids, p.rejected_mask) for p in pairs]
    return chosen + rejected


class RewardObjective:
    """Bradley-Terry on one packed forward per micro-batch; normaliser = pairs."""

    def __init__(
        self,
        *,
        packed: bool,
        pad_id: int,
        use_margin: bool,
        center_rewards_coefficient: float,
        device: torch.device,
    ) -> None:
        self.packed = packed
        self.pad_id = pad_id
        self.use_margin = use_margin
        self.center_rewards_coefficient = center_rewards_coefficient
        self.device = device

    def normalizer(self, pairs: Sequence[PreferenceExample]) -> float:
        return float(len(pairs))

    def loss(
        self, model: torch.nn.Module, pairs: Sequence[PreferenceExample]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        sequences = pair_sequences(pairs)
        batch = (pack(sequences) if self.packed else pad(sequences, self.pad_id)).to(self.device)
        rewards = model(batch)
        chosen_rewards, rejected_rewards = rewards[: len(pairs)], rewards[len(pairs) :]
        margin = None
        if self.use_margin and any(p.margin is not None for p in pairs):
            margin = torch.tensor([p.margin or 0.0 for p in pairs], device=rewards.device)
        losses = bradley_terry_loss(
            chosen_rewards,
            rejected_rewards,
            margin=margin,
            center_rewards_coefficient=self.center_rewards_coefficient,
        )
        metrics = {
            "accuracy": float(pairwise_accuracy(chosen_rewards, rejected_rewards)) * len(pairs),
            "rewards/chosen": float(chosen_rewards.detach().sum()),
            "rewards/rejected": float(rejected_rewards.detach().sum()),
            "rewards/margin": float((chosen_rewards - rejected_rewards).detach().sum()),
        }
        return losses.sum(), metrics


@leaves_its_group
def run_reward(cfg: RewardConfig, *, stop_after_step: int | None = None) -> LoopResult:
    """Trains a reward model as configured; the result goes to ``<out>/reward_model``."""

    if not cfg.data.train:
        raise AlignkitError(
            "no training data: set data.train=PATH (prompt/chosen/rejected records)", field="data.train"
        )
    torch.manual_seed(cfg.train.seed)
    dist = setup_distributed(resolve_device(cfg.device))
    output_dir = Path(cfg.out)
    loaded, lm = prepare_model(cfg, dist)
    tokenizer = loaded.tokenizer
    lint_or_refuse(cfg, tokenizer, getattr(lm, "generation_config", None))
    train_pairs, eval_pairs, report = load_train_eval(
        cfg, tokenizer, dist, load_preference_data, unit="pairs"
    )
    # The head's init draws from the global RNG: seed it so runs (and resumes) start identically.
    torch.manual_seed(cfg.train.seed)
    model = RewardModel(lm)
    if dist.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(output_dir / "config.yaml", config_to_yaml(cfg))
    objective = RewardObjective(
        packed=cfg.train.packing,
        pad_id=tokenizer.pad_token_id or 0,
        use_margin=cfg.use_margin,
        center_rewards_coefficient=cfg.center_rewards_coefficient,
        device=dist.device,
    )
    result = run_loop(
        model=model,
        objective=objective,
        train_examples=train_pairs,
        eval_examples=eval_pairs,
        cfg=cfg.train,
        output_dir=output_dir,
        config_hash=config_hash(cfg),
        resume=cfg.resume,
        dist=dist,
        description="rm",
        stop_after_step=stop_after_step,
    )
    finished = stop_after_step is None or result.state.step >= stop_after_step
    exported = gather_for_export(model) if finished else None  # collective under FSDP: every rank gathers
    if dist.is_main and finished:
        final = save_reward_model(
            model,
            tokenizer,
            output_dir / "reward_model",
            base_model=cfg.model,
            seed=cfg.train.seed,
            extra={"max_length": cfg.data.max_length},
            state_dict=exported,
        )
        write_run_manifest(output_dir, kind="reward_model", cfg=cfg, result=result, report=report, output=final,
                           count_name="pairs", count=len(train_pairs))
    return result


# ---------------------------------------------------------------------------------------------
# alignkit score: (prompt, response) records -> JSONL with a score


def _formatted_replies(record: Any, tokenizer: Any) -> list[tuple[list[int], list[int]]]:
    """One (ids, mask) per reply to score: the conversation, or prompt+chosen and prompt+rejected."""

    if record.kind == "preference":
        conversations = [record.messages + record.chosen, record.messages + record.rejected]
    else:
        conversations = [record.messages]
    out = []
    for messages in conversations:
        try:
            formatted = format_chat(tokenizer, messages)
        except DataError as error:
            error.source, error.line = record.source, record.line
            raise
        out.append((formatted.input_ids, formatted.loss_mask))
    return out


def run_score(cfg: ScoreConfig) -> int:
    """Scores every record of ``cfg.data``; writes ``cfg.out``. Returns the number of records."""

    if not cfg.model or not cfg.data or not cfg.out:
        missing = "model" if not cfg.model else ("data" if not cfg.data else "out")
        raise AlignkitError("expected alignkit score --model RM_DIR data=FILE out=FILE.jsonl", field=missing)
    raws = list(read_records(cfg.data))
    records, _ = load_records(cfg.data, kind=cfg.kind, raws=raws)
    loaded = load_reward_model(cfg.model, device=cfg.device, dtype=cfg.dtype)
    sequences: list[tuple[list[int], list[int]]] = []
    for record in records:
        if record.kind not in ("messages", "prompt_completion", "preference"):
            raise DataError(
                f"cannot score a {record.kind} record (expected prompt+completion, messages or "
                "prompt/chosen/rejected)",
                source=record.source,
                line=record.line,
                field="(record)",
            )
        for ids, mask in _formatted_replies(record, loaded.tokenizer):
            if len(ids) > cfg.max_length:
                raise DataError(
                    f"{len(ids)} tokens exceed max_length={cfg.max_length}",
                    source=record.source,
                    line=record.line,
                    field="(length)",
                )
            sequences.append((ids, mask))
    scores = iter(score_sequences(loaded.model, sequences, batch_size=cfg.batch_size))
    rows = []
    for raw, record in zip(raws, records, strict=True):
        if record.kind == "preference":
            rows.append({**raw.data, "chosen_score": next(scores), "rejected_score": next(scores)})
        else:
            rows.append({**raw.data, "score": next(scores)})
    atomic_write_text(cfg.out, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return len(rows)


def rm_command(cfg: RewardConfig, progress: Callable[[str], None] | None = None) -> CommandResult:
    """``alignkit rm``: the run, and its reward model folder as the output."""
    result = run_reward(cfg)
    folder = Path(cfg.out) / "reward_model"
    return CommandResult(
        output=str(folder),
        show=say(f"rm done: {result.state.step} steps ({result.state.nonfinite_steps} skipped), reward model in "
                 f"{folder}"),
    )


def score_command(cfg: ScoreConfig, progress: Callable[[str], None] | None = None) -> CommandResult:
    """``alignkit score``: the scored records' file as the output."""
    count = run_score(cfg)
    return CommandResult(output=cfg.out, show=say(f"scored {count} records into {cfg.out}"))
