"""A seeded, resumable, rank-sharded sampler over example indices.

Epoch ``e`` visits a permutation drawn from ``seed + e``; each rank takes every ``world_size``-th
index of it. The state is two integers (epoch, position), stored as JSON, so resume continues
mid-epoch exactly where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SamplerState:
    epoch: int = 0
    position: int = 0  # examples of this rank's share already consumed in this epoch


class ResumableSampler:
    def __init__(self, num_examples: int, *, seed: int, shuffle: bool = True, rank: int = 0,
                 world_size: int = 1) -> None:
        if num_examples < world_size:
            raise ValueError(f"{num_examples} examples cannot be shared by {world_size} processes")
        self.num_examples = num_examples
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.state = SamplerState()

    def epoch_order(self, epoch: int) -> list[int]:
        order = (np.random.default_rng(self.seed + epoch).permutation(self.num_examples) if self.shuffle
                 else np.arange(self.num_examples))
        # Drop the tail so every rank gets the same count (keeps steps in lockstep).
        usable = (self.num_examples // self.world_size) * self.world_size
        return [int(i) for i in order[:usable][self.rank :: self.world_size]]

    @property
    def per_rank(self) -> int:
        return self.num_examples // self.world_size

    def take(self, count: int) -> tuple[list[int], bool]:
        """The next ``count`` indices of this rank; the flag says an epoch ended inside this take."""
        taken: list[int] = []
        crossed = False
        while len(taken) < count:
            order = self.epoch_order(self.state.epoch)
            need = count - len(taken)
            chunk = order[self.state.position : self.state.position + need]
            taken += chunk
            self.state.position += len(chunk)
            if self.state.position >= len(order):
                self.state.epoch += 1
                self.state.position = 0
                crossed = True
        return taken, crossed

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.state.epoch, "position": self.state.position, "seed": self.seed,
                "num_examples": self.num_examples, "world_size": self.world_size}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state.get("num_examples") != self.num_examples or state.get("world_size") != self.world_size:
            raise ValueError(
                f"the checkpoint's sampler saw {state.get('num_examples')} examples on {state.get('world_size')} "
                f"processes; this run has {self.num_examples} on {self.world_size}"
            )
        self.state = SamplerState(epoch=int(state["epoch"]), position=int(state["position"]))
