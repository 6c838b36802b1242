"""PPO's critic: a value head on the policy trunk, or a separate trunk with its own head.
"""

from __future__ import annotations

from typing import Any

import torch

from alignkit.data.collate import Batch
from alignkit.models.forward import hidden_states


class ValueHead(torch.nn.Module):
    """V(s_t) = w·h_t + b on the policy trunk's last hidden state; fp32, zero-initialised (V = 0 at start)."""

    def __init__(self, hidden_size: int, device: torch.device) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(hidden_size, 1, device=device, dtype=torch.float32)
        torch.nn.init.zeros_(self.linear.weight)
        torch.nn.init.zeros_(self.linear.bias)

    def values(self, policy_hidden: torch.Tensor, batch: Batch, predict_mask: torch.Tensor) -> torch.Tensor:
        return self.linear(policy_hidden.float()).squeeze(-1)


class CriticModel(torch.nn.Module):
    """A separate critic: its own trunk (a copy of the starting model, LoRA or full) and a value head."""

    def __init__(self, lm: Any, hidden_size: int, device: torch.device) -> None:
        super().__init__()
        self.lm = lm
        self.head = ValueHead(hidden_size, device)

    def values(self, policy_hidden: torch.Tensor, batch: Batch, predict_mask: torch.Tensor) -> torch.Tensor:
        return self.head.values(hidden_states(self.lm, batch)[predict_mask], batch, predict_mask)
