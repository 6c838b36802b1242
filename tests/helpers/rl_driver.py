"""Runs PPO or GRPO from command-line overrides in its own process (used by the multi-process tests).

    python rl_driver.py ppo|grpo key=value ...

Two test-only changes, given to ``run_ppo`` / ``run_grpo`` as their ``rollouts`` and ``before_finish``
parameters (seams, not patched module imports):

- Each rollout prompt is sampled alone, from a seed of its own (its index in the prompt file and the
  step; a resumed run counts steps from its checkpoint's). The recipes seed a step's sampling per process (step seed + rank) and draw one sampling
  stream per generation batch, so which reply a prompt gets depends on how the prompts were shared
  out between processes. Sampled this way, one process and two processes see the same replies, and
  what is left to compare is everything after sampling: rewards, advantages, losses, updates.
- At the end each process writes its trainable parameters to
  ``output_dir/trainable-rank{R}.safetensors`` (the checkpoints hold rank 0's only).
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch.distributed.tensor import DTensor

from alignkit.config.base import load_config
from alignkit.config.rl import GRPOConfig, PPOConfig
from alignkit.data.prompt_sets import Prompt
from alignkit.recipes.grpo import run_grpo
from alignkit.recipes.ppo import run_ppo
from alignkit.training.checkpoint import checkpoint_dirs, find_resume_checkpoint
from alignkit.training.rollout import Rollout, generate


def generate_each_prompt_alone(original: Callable[..., Rollout], *, first_step: int = 0) -> Callable[..., Rollout]:
    steps = itertools.count(first_step)

    def generate(
        policy: Any,
        tokenizer: Any,
        prompts: list[Prompt],
        *,
        cfg: Any,
        seed: int,
        samples_per_prompt: int = 1,
    ) -> Rollout:
        del seed  # differs per process
        step = next(steps)
        parts = [
            original(
                policy,
                tokenizer,
                [prompt],
                cfg=cfg,
                seed=1000 * step + int(prompt.name.rsplit("#", 1)[1]),
                samples_per_prompt=samples_per_prompt,
            )
            for prompt in prompts
        ]
        return Rollout(
            prompts=list(prompts),
            response_ids=[ids for part in parts for ids in part.response_ids],
            texts=[text for part in parts for text in part.texts],
            stopped=torch.cat([part.stopped for part in parts]),
            samples_per_prompt=samples_per_prompt,
        )

    return generate


def dump_trainable(run: Any) -> None:
    """Each process writes its trained parameters, for the test to compare across process counts
    (full tensors: an FSDP shard is gathered, which every process does in the same order)."""
    params = {
        name: (param.full_tensor() if isinstance(param, DTensor) else param).detach().cpu().contiguous()
        for name, param in run.trainable.named_parameters()
        if param.requires_grad
    }
    run.output_dir.mkdir(parents=True, exist_ok=True)
    save_file(params, str(run.output_dir / f"trainable-rank{run.dist.rank}.safetensors"))


def main() -> None:
    kind, overrides = sys.argv[1], sys.argv[2:]
    config_class: Any = PPOConfig if kind == "ppo" else GRPOConfig
    run: Any = run_ppo if kind == "ppo" else run_grpo
    cfg = load_config(config_class, None, overrides)
    resumed = find_resume_checkpoint(Path(cfg.out), cfg.resume)
    first_step = next((step for step, folder in checkpoint_dirs(Path(cfg.out) / "checkpoints") if folder == resumed), 0)
    run(cfg, rollouts=generate_each_prompt_alone(generate, first_step=first_step), before_finish=dump_trainable)


if __name__ == "__main__":
    main()
