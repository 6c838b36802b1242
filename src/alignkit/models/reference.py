"""The RL reference model: the policy with its adapter disabled (LoRA), or a frozen copy (full).
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from alignkit.data.collate import Batch
from alignkit.models.logprobs import token_forward


class Reference:
    """Reference log-probs: the policy with its adapter disabled (LoRA), or a frozen copy (full)."""

    def __init__(self, policy: Any, *, lora: bool) -> None:
        self.model = None if lora else copy.deepcopy(policy).requires_grad_(False).eval()

    def logps(self, policy: Any, batch: Batch, *, temperature: float, chunk_size: int) -> torch.Tensor:
        with torch.no_grad():
            if self.model is not None:
                return token_forward(self.model, batch, temperature=temperature, chunk_size=chunk_size).logps
            with policy.disable_adapter():
                return token_forward(policy, batch, temperature=temperature, chunk_size=chunk_size).logps
