"""Rollouts: a batch of prompts, the policy's sampled replies, and the packed or padded batches of both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from alignkit.config.rl import RLFields
from alignkit.data.collate import Batch, pack, pad
from alignkit.data.prompt_sets import Prompt
from alignkit.generation.local import LocalGenerator
from alignkit.generation.types import GenerationParams


@dataclass
class Rollout:
    """B replies; with G samples per prompt, reply i answers ``prompts[i // G]``."""

    prompts: list[Prompt]
    response_ids: list[list[int]]
    texts: list[str]
    stopped: torch.Tensor  # (B,) bool: ended with end-of-turn before the token limit
    samples_per_prompt: int = 1

    def __len__(self) -> int:
        return len(self.response_ids)

    def prompt_of(self, index: int) -> Prompt:
        return self.prompts[index // self.samples_per_prompt]

    @property
    def lengths(self) -> torch.Tensor:
        return torch.tensor([len(r) for r in self.response_ids])

    def batch(self, indices: Sequence[int], *, packed: bool, pad_id: int) -> Batch:
        """Prompt + reply sequences; ``loss_mask`` marks the reply tokens (the ones scored)."""
        sequences = []
        for i in indices:
            prompt, reply = self.prompt_of(i).ids, self.response_ids[i]
            sequences.append((prompt + reply, [0] * len(prompt) + [1] * len(reply)))
        return pack(sequences) if packed else pad(sequences, pad_id)


def generate(
    policy: Any,
    tokenizer: Any,
    prompts: list[Prompt],
    *,
    cfg: RLFields,
    seed: int,
    samples_per_prompt: int = 1,
) -> Rollout:

    rollout = cfg.rollout
    generator = LocalGenerator(
        policy, tokenizer, batch_size=rollout.batch_size, chat_template=cfg.data.chat_template
    )
    params = GenerationParams(
        max_new_tokens=rollout.max_new_tokens,
        temperature=rollout.temperature,
        top_p=rollout.top_p,
        top_k=rollout.top_k,
        num_samples=samples_per_prompt,
        seed=seed,
    )
    generations = [g for samples in generator.generate_ids([p.ids for p in prompts], params) for g in samples]
    return Rollout(
        prompts=prompts,
        response_ids=[g.token_ids for g in generations],
        texts=[g.text for g in generations],
        stopped=torch.tensor([g.stopped for g in generations]),
        samples_per_prompt=samples_per_prompt,
    )
