"""A scalar reward model: a causal LM trunk plus ``Linear(hidden, 1)``, and its save/load format.

The score of a sequence is the head applied to the hidden state of its *last position*, found from
the batch's ``seq_ids`` (which example each position belongs to), never by looking for a pad or EOS
id: with pad == eos, "the first pad token" is the reply's own end-of-turn token on one row and a
padding token on another. Packed rows and right-padded rows therefore give the same scores.

Sequences are cut right after their last trained token (``reply_end``), so the score sits on the
reply's end-of-turn token rather than on whatever the chat template appends after it (ChatML adds
a newline). Training (``alignkit rm``), scoring (``alignkit score``) and ranking (``alignkit prefs``)
all go through ``reply_end``, so they read the same position.

Departures from transformers' ``*ForSequenceClassification``: the head is kept in float32 (the
trunk may be bf16), and the folder format is ours (below) because a LoRA reward model is an adapter
plus a head, which transformers has no single class for.

Folder layout written by ``save_reward_model`` (atomic, with a checksummed manifest)::

    reward_config.json      format, base model spec, trunk kind ("adapter" | "trunk"), hidden size
    score_head.safetensors  the head's weight (1, hidden)
    adapter/ or trunk/      a PEFT adapter folder, or a full causal LM folder (safetensors)
    tokenizer files
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from alignkit.data.collate import Batch, pack
from alignkit.errors import ModelError
from alignkit.io import atomic_folder, first_mismatch
from alignkit.models.forward import hidden_states
from alignkit.models.loader import load_model
from alignkit.models.unwrap import base_causal_lm

REWARD_CONFIG = "reward_config.json"
SCORE_HEAD = "score_head.safetensors"
FORMAT = "alignkit-reward-model"


def reply_end(input_ids: list[int], loss_mask: list[int]) -> tuple[list[int], list[int]]:
    """Cuts a formatted example right after its last trained (reply) token.

    Args: input_ids, loss_mask: one example, as formatting produced them (same length).
    Returns: the prefix ending at the last position whose mask is 1 (the end-of-turn token of the
    last reply); the example unchanged when nothing is trained.
    """
    last = max((i for i, m in enumerate(loss_mask) if m), default=len(input_ids) - 1)
    return input_ids[: last + 1], loss_mask[: last + 1]


def last_positions(seq_ids: torch.Tensor, num_sequences: int) -> torch.Tensor:
    """Flat index (into ``seq_ids.reshape(-1)``) of each sequence's last position.

    seq_ids: (R, T), the sequence of each position, -1 on padding. Returns (num_sequences,) long.
    """
    flat = seq_ids.reshape(-1)
    index = torch.arange(flat.numel(), device=flat.device)
    real = flat >= 0
    last = torch.full((num_sequences,), -1, dtype=torch.long, device=flat.device)
    last = last.scatter_reduce(0, flat[real], index[real], reduce="amax")
    if bool((last < 0).any()):
        raise ValueError("a sequence of the batch has no positions")
    return last


class RewardModel(torch.nn.Module):
    """``lm`` (a causal LM, PEFT-wrapped or not) with a scalar head on its last hidden state."""

    def __init__(self, lm: Any, *, hidden_size: int | None = None) -> None:
        super().__init__()
        self.lm = lm
        hidden = hidden_size or int(base_causal_lm(lm).config.hidden_size)
        self.score_head = torch.nn.Linear(hidden, 1, bias=False)
        std = float(getattr(base_causal_lm(lm).config, "initializer_range", 0.02))
        torch.nn.init.normal_(self.score_head.weight, std=std)
        device = next(lm.parameters()).device
        self.score_head.to(device=device, dtype=torch.float32)

    @property
    def hidden_size(self) -> int:
        return int(self.score_head.in_features)

    def forward(self, batch: Batch) -> torch.Tensor:
        """Rewards (num_sequences,) float32, read at each sequence's last position."""
        hidden = hidden_states(self.lm, batch)
        last_hidden = hidden.reshape(-1, hidden.shape[-1])[last_positions(batch.seq_ids, batch.num_sequences)]
        return self.score_head(last_hidden.float()).squeeze(-1)


@torch.no_grad()
def score_sequences(
    model: RewardModel, sequences: Sequence[tuple[list[int], list[int]]], *, batch_size: int = 8
) -> list[float]:
    """Scores formatted (input_ids, loss_mask) examples, ``batch_size`` per packed forward."""
    was_training = model.training
    model.eval()
    device = model.score_head.weight.device
    scores: list[float] = []
    for start in range(0, len(sequences), batch_size):
        chunk = [reply_end(ids, mask) for ids, mask in sequences[start : start + batch_size]]
        scores += model(pack(chunk).to(device)).tolist()
    if was_training:
        model.train()
    return scores


def _is_peft(model: Any) -> bool:
    return callable(getattr(model, "get_base_model", None))


def save_reward_model(
    model: RewardModel,
    tokenizer: Any,
    folder: str | Path,
    *,
    base_model: str,
    seed: int = 0,
    extra: dict[str, Any] | None = None,
    state_dict: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Writes the reward model folder atomically: head + adapter (LoRA) or head + full trunk.

    ``state_dict``: the weights to write when ``model`` holds only shards of them (FSDP), keyed as in
    ``model.state_dict()``; None writes the model's own weights.
    """
    folder = Path(folder)
    head_weight = model.score_head.weight if state_dict is None else state_dict["score_head.weight"]
    lm_state = None if state_dict is None else {
        name.removeprefix("lm."): tensor for name, tensor in state_dict.items() if name.startswith("lm.")}
    trunk_kind = "adapter" if _is_peft(model.lm) else "trunk"
    base = str(Path(base_model).resolve()) if Path(base_model).exists() else base_model
    config = {
        "format": FORMAT,
        "version": 1,
        "trunk": trunk_kind,
        "base_model": base,
        "seed": seed,
        "hidden_size": model.hidden_size,
        **(extra or {}),
    }
    with atomic_folder(folder, {"kind": "reward_model"}) as tmp:
        save_file(
            {"weight": head_weight.detach().float().cpu().contiguous()}, str(tmp / SCORE_HEAD)
        )
        model.lm.save_pretrained(tmp / trunk_kind, safe_serialization=True, state_dict=lm_state)
        tokenizer.save_pretrained(tmp)
        if trunk_kind == "trunk":  # a full trunk folder loads on its own in plain transformers
            tokenizer.save_pretrained(tmp / trunk_kind)
        (tmp / REWARD_CONFIG).write_text(json.dumps(config, indent=2))
    return folder


@dataclass
class LoadedRewardModel:
    model: RewardModel
    tokenizer: Any
    config: dict[str, Any]


def load_reward_model(folder: str | Path, *, device: str = "auto", dtype: str = "auto") -> LoadedRewardModel:
    """Restores a folder written by ``save_reward_model`` (checksums verified first), in eval mode."""
    from transformers import AutoTokenizer


    folder = Path(folder)
    config_path = folder / REWARD_CONFIG
    if not config_path.is_file():
        raise ModelError(
            f"{folder} is not a reward model folder (no {REWARD_CONFIG}); train one with alignkit rm",
            field="model",
        )
    problem = first_mismatch(folder)
    if problem is not None:
        raise ModelError(f"refusing to load the reward model: {problem}", source=str(folder), field="model")
    config = json.loads(config_path.read_text())
    if config.get("format") != FORMAT:
        raise ModelError(f"unknown reward model format {config.get('format')!r}", source=str(config_path))
    if config["trunk"] == "adapter":
        loaded = load_model(
            config["base_model"],
            adapter=str(folder / "adapter"),
            dtype=dtype,
            device=device,
            seed=int(config.get("seed", 0)),
        )
    else:
        loaded = load_model(str(folder / "trunk"), dtype=dtype, device=device)
    model = RewardModel(loaded.model, hidden_size=int(config["hidden_size"]))
    model.score_head.weight.data.copy_(load_file(str(folder / SCORE_HEAD))["weight"])
    model.requires_grad_(False)
    model.eval()
    return LoadedRewardModel(model=model, tokenizer=AutoTokenizer.from_pretrained(folder), config=config)
