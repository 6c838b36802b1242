"""The held-out split every recipe makes when no eval file is given: a seeded share of the training items."""

from __future__ import annotations

from typing import TypeVar

import torch

T = TypeVar("T")


def split_held_out(items: list[T], fraction: float, seed: int) -> tuple[list[T], list[T]]:
    """(kept, held out): ``round(fraction * len)`` items (at least one) chosen by a seeded permutation,
    both in their original order; ``fraction <= 0`` holds nothing out."""
    if fraction <= 0:
        return items, []
    order = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed)).tolist()
    held = set(order[: max(1, round(fraction * len(items)))])
    return [x for i, x in enumerate(items) if i not in held], [x for i, x in enumerate(items) if i in held]
