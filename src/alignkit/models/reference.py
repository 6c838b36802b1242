"""The reference model a KL term or a preference loss compares the policy against.

``copy``: a frozen copy of the starting model (full fine-tuning); ``adapter_disabled``: the policy itself
with its LoRA adapter switched off through PEFT's ``disable_adapter()``, no second copy in memory. Both
are taken from the starting weights, so build one before the first update (or a checkpoint restore).
DPO adds a third kind, log-probs precomputed once and cached with fingerprints (``recipes/dpo.py``).
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import torch

from alignkit.data.collate import Batch
from alignkit.errors import ConfigError
from alignkit.models.logprobs import TokenOutputs, token_forward

ReferenceKind = Literal["copy", "adapter_disabled"]


class Reference:
    """Reference log-probs, per token (PPO/GRPO) or summed per sequence (DPO), without gradient."""

    def __init__(self, policy: Any, *, kind: ReferenceKind) -> None:
        if kind == "adapter_disabled" and not callable(getattr(policy, "disable_adapter", None)):
            raise ConfigError("reference=adapter_disabled needs a PEFT (LoRA) model", field="reference")
        self.kind = kind
        self.model = copy.deepcopy(policy).requires_grad_(False).eval() if kind == "copy" else None

    def forward(self, policy: Any, batch: Batch, *, temperature: float = 1.0, chunk_size: int = 1024) -> TokenOutputs:
        with torch.no_grad():
            if self.model is not None:
                return token_forward(self.model, batch, temperature=temperature, chunk_size=chunk_size,
                                     with_entropy=False)
            with policy.disable_adapter():
                return token_forward(policy, batch, temperature=temperature, chunk_size=chunk_size,
                                     with_entropy=False)

    def logps(self, policy: Any, batch: Batch, *, temperature: float, chunk_size: int) -> torch.Tensor:
        """Per trained token (N,), at the sampling temperature."""
        return self.forward(policy, batch, temperature=temperature, chunk_size=chunk_size).logps

    def sequence_logps(self, policy: Any, batch: Batch, *, chunk_size: int) -> torch.Tensor:
        """Summed over each sequence's trained tokens (S,)."""
        return self.forward(policy, batch, chunk_size=chunk_size).sequence_sums()
