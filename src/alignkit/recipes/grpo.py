"""GRPO: group-relative policy optimisation, read top to bottom.

1. Load the policy (LoRA by default, or full; ``adapter=SFT_DIR`` is merged in first), the reference
   (the policy with its LoRA disabled, or a frozen copy; none for full fine-tuning with ``beta=0``),
   the reward source and the prompts. No value model: the group is the baseline.
2. Each rollout step:
   a. take ``rollout.prompts_per_step`` prompts and sample ``grpo.group_size`` (G) replies to each;
   b. score each reply; replies cut at ``max_new_tokens`` without end-of-turn lose ``reward.stop_penalty``;
   c. advantage of reply i = (r_i - mean of its group) / (std of its group + 1e-4), the same for all
      of its tokens (``scale_rewards=false``: no division, as Dr. GRPO);
   d. ``grpo.iterations`` (μ) passes over shuffled mini-batches of the clipped surrogate
      ``-min(ρ A, clip(ρ, 1-ε, 1+ε) A)`` plus ``beta`` x k3(π, π_ref) per token, token means.
3. Save the policy (``adapter/`` or ``model/``) and ``run.json``.

Where this departs from GRPO in DeepSeekMath (Shao et al., 2024):
- The loss is one token mean over the mini-batch (as DAPO and TRL's default), not the paper's mean
  over replies of per-reply token means, which favours short replies when the advantage is negative.
- Outcome rewards only (one scalar per reply): no process supervision, no iterative retraining of the
  reward model.
- With ``iterations=1`` (the default, and TRL's) π_old is the current policy detached: the ratio is 1
  and the clip never acts; the old-policy forward is skipped. ``iterations > 1`` computes π_old once per
  rollout, as the paper's μ inner updates.
- The group std is the unbiased one with eps = 1e-4 (TRL 1.16's ``nanstd``).
- The stop penalty is ours; log-probs are taken at the sampling temperature (as TRL).
- LoRA dropout must be 0.
- With several processes, each samples all G replies of its own prompts: a group never spans
  processes, so its mean and std (the only statistics in an advantage; there is no batch-level
  whitening or std) are exact in each process. Gradients are summed exactly over processes.
- Rollouts run through transformers ``generate``. An in-process vLLM engine (weights synced each
  step) is left out: it cannot be installed or tested here, and we ship no untested path.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch

from alignkit.config.rl import GRPOConfig
from alignkit.losses.rl import group_advantages, kl_estimate, masked_mean, ppo_policy_loss
from alignkit.models.logprobs import to_rows
from alignkit.recipes.rl import (
    command_result,
    evaluate,
    finish_run,
    micro_forward,
    rollout_tensors,
    score_replies,
    start_run,
)
from alignkit.result import CommandResult
from alignkit.training.distributed import leaves_its_group
from alignkit.training.rl_run import PhaseClock, RLResult, RLRun
from alignkit.training.rollout import Rollout, generate

__all__ = ["GRPOConfig", "run_grpo"]


def _micro_loss(
    run: RLRun, rollout: Rollout, tensors: dict[str, torch.Tensor], advantages: torch.Tensor, micro: list[int]
) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped surrogate with per-reply advantages + β k3 KL to the reference, token means."""
    device = run.dist.device
    grpo = run.cfg.grpo  # type: ignore[attr-defined]
    out = micro_forward(run, rollout, micro)
    mask = tensors["mask"][micro].to(device)
    width = mask.shape[1]
    logps = to_rows(out.logps, out.lengths, width)
    old_logps = tensors["old_logps"][micro].to(device) if "old_logps" in tensors else logps.detach()
    token_advantages = advantages[micro].to(device)[:, None].expand_as(logps)
    loss, clip_fraction, approx_kl = ppo_policy_loss(
        logps, old_logps, token_advantages, mask, clip_range=grpo.clip_range
    )
    metrics = {
        "policy_loss": float(loss.detach()),
        "clip_fraction": float(clip_fraction.detach()),
        "approx_kl": float(approx_kl.detach()),
        "entropy": float(masked_mean(to_rows(out.entropy_or_fail(), out.lengths, width), mask).detach()),
    }
    if "ref_logps" in tensors:
        kl = masked_mean(kl_estimate(logps, tensors["ref_logps"][micro].to(device), kind="k3"), mask)
        loss = loss + grpo.beta * kl
        metrics["kl_k3_token"] = float(kl.detach())
    return loss, metrics


def _step_metrics(rollout: Rollout, scores: Any, group_size: int) -> dict[str, float]:
    grouped = scores.raw.view(-1, group_size)
    group_std = grouped.std(dim=1)
    return {
        "reward": float(scores.raw.mean()),
        "score": float(scores.penalised.mean()),
        "reward_std": float(group_std.mean()),
        "zero_std_groups": float((scores.penalised.view(-1, group_size).std(dim=1) == 0).float().mean()),
        "response_length": float(rollout.lengths.float().mean()),
        "stopped": float(rollout.stopped.float().mean()),
        "unscored": scores.unscored / len(rollout),
    }


@leaves_its_group
def run_grpo(cfg: GRPOConfig, *, stop_after_step: int | None = None, rollouts: Callable[..., Rollout] = generate,
             before_finish: Callable[[RLRun], None] | None = None) -> RLResult:
    """Runs GRPO as configured; outputs go to ``cfg.out``. The testing aids are ``run_ppo``'s."""
    group = cfg.grpo.group_size
    # LoRA gets its reference for free (adapter disabled), so held-out KL is measured even with beta=0.
    run, source, _ = start_run(
        cfg,
        description="grpo",
        samples_per_prompt=group,
        value_model=False,
        reference=cfg.grpo.beta > 0 or cfg.finetune == "lora",
    )

    def held_out() -> dict[str, float]:
        return evaluate(run, source)

    try:
        if run.state.step == 0 and run.eval_prompts:
            run.write_eval(held_out())
        while run.state.step < run.total_steps:
            clock = PhaseClock()
            prompts, seed = run.next_prompts()
            with run.gathered():
                rollout = rollouts(
                    run.policy, run.tokenizer, prompts, cfg=cfg, seed=seed, samples_per_prompt=group
                )
            run.begin_step(rollout)
            clock.mark("generate")
            chats = [rollout.prompt_of(i).chat for i in range(len(rollout))]
            scores = score_replies(
                source,
                chats,
                rollout.texts,
                rollout.stopped,
                unscored=cfg.reward.unscored,
                penalty=cfg.reward.stop_penalty,
            )
            advantages = group_advantages(scores.penalised, group, scale=cfg.grpo.scale_rewards)
            clock.mark("reward")
            tensors = rollout_tensors(
                run, rollout, policy=cfg.grpo.iterations > 1, reference=cfg.grpo.beta > 0
            )
            clock.mark("logprobs")
            update_means, skipped = run.train_on(
                rollout, partial(_micro_loss, run, rollout, tensors, advantages), passes=cfg.grpo.iterations
            )
            clock.mark("train")
            record = run.process_mean({**_step_metrics(rollout, scores, group), **update_means})
            record.update(skipped_updates=skipped, **clock.timings(run.dist.device))
            done = run.end_step(record, held_out)
            if done or (stop_after_step is not None and run.state.step >= stop_after_step):
                break
    finally:
        run.close()
    if before_finish is not None:
        before_finish(run)
    return finish_run(run, kind="grpo", stop_after_step=stop_after_step, extra={"group_size": group})


def grpo_command(cfg: GRPOConfig, progress: Callable[[str], None] | None = None) -> CommandResult:
    """``alignkit grpo``: the run, and its final policy as the output."""
    return command_result("grpo", cfg.model, run_grpo(cfg))
