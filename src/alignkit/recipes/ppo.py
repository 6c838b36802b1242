"""PPO with a KL penalty to the frozen SFT model (step 3 of RLHF), read top to bottom.

1. Load the policy (LoRA by default, or full; ``adapter=SFT_DIR`` is merged in first, so the policy
   starts as the SFT model), the frozen reference (the policy with its LoRA disabled, or a frozen copy),
   the value model (``ppo.critic=head``: ``Linear(hidden, 1)`` on the policy trunk's last hidden state;
   ``model``: a separate copy of the starting model with its own head), the reward source and prompts.
2. Each rollout step:
   a. take ``rollout.prompts_per_step`` prompts, sample one reply each (``rollout_s``: generation);
   b. score each (prompt, reply) with the reward source; replies cut at ``max_new_tokens`` without
      end-of-turn lose ``reward.stop_penalty`` (``reward_s``);
   c. one no-grad forward: old log-probs, values, reference log-probs (``logprobs_s``);
   d. per-token reward ``r_t = -β kl_t`` plus the score on the reply's last token, with kl_t the
      k1/k2/k3 estimate and β fixed or adaptive (Ziegler et al.'s controller);
   e. GAE(γ, λ) gives advantages and returns; advantages are whitened over the global batch (the
      replies of all processes);
   f. ``ppo.epochs`` passes over shuffled mini-batches: clipped policy loss + ``vf_coef`` x clipped value
      loss - ``ent_coef`` x entropy, each a token mean over the mini-batch (``train_s``);
   g. β is updated from the measured KL; metrics are logged, held-out prompts evaluated, checkpoints written.
3. Save the policy (``adapter/`` or ``model/``) and ``run.json``.

Where this departs from the PPO-RLHF papers (Ziegler et al., 2019; Stiennon et al., 2020; Ouyang et
al., 2022, InstructGPT):
- No pretraining-mix term (InstructGPT's PPO-ptx) and no reward normalisation to mean 0 / std 1 on
  the initial policy's samples (Ziegler et al.); advantage whitening per batch stands in for the latter.
- The critic is by default a head on the policy's own trunk (shared, as TRL's old value-head model);
  the papers train a separate value model initialised from the reward model. ``critic=model`` gives a
  separate trunk, initialised from the starting policy (the reward model may not share its tokenizer).
  The value head starts at zero.
- Losses are token means over a mini-batch (long replies weigh more), not means of per-reply means.
- The stop penalty is ours (TRL's ``missing_eos_penalty``), so the policy learns to end its turn.
- Log-probs are taken at the sampling temperature (as TRL); top_p/top_k < 1 would sample off-policy.
- LoRA dropout must be 0 (``check_config``), so that π/π_old is exactly what the weights say.
- With several processes, advantages are whitened with the global batch's mean and variance (token
  count and sum, then squared deviations around the global mean, each summed over processes), and
  gradients are summed exactly: an update is the one a single process would make on the union of
  the processes' mini-batches. The replies themselves do depend on the split: each process samples
  its prompts with a seed of its own.
- Rollouts run through transformers ``generate``. An in-process vLLM engine (weights synced each
  step) is left out: it cannot be installed or tested here, and we ship no untested path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import torch

from alignkit.config.rl import PPOConfig
from alignkit.losses.rl import (
    AdaptiveKLController,
    FixedKLController,
    KLController,
    compute_gae,
    explained_variance,
    kl_estimate,
    masked_mean,
    masked_moments,
    masked_sum,
    masked_whiten,
    ppo_policy_loss,
    ppo_value_loss,
)
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

__all__ = ["PPOConfig", "kl_shaped_rewards", "run_ppo"]


def kl_controller(cfg: PPOConfig) -> KLController:
    if cfg.ppo.adaptive_kl:
        return AdaptiveKLController(cfg.ppo.kl_coef, cfg.ppo.kl_target, cfg.ppo.kl_horizon)
    return FixedKLController(cfg.ppo.kl_coef)


def kl_shaped_rewards(
    scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, *, beta: float
) -> torch.Tensor:
    """Per-token rewards (B, T): ``-β kl_t`` on every reply token, plus the reply's score on its last one.

    scores: (B,); kl: (B, T) per-token KL estimates; mask: (B, T) with contiguous reply tokens.
    """
    rewards = torch.where(mask.bool(), -beta * kl, torch.zeros_like(kl))
    last = (mask.sum(dim=1).long() - 1).clamp(min=0)
    rewards[torch.arange(rewards.shape[0]), last] += scores
    return rewards


def _experience(run: RLRun, rollout: Rollout, scores: torch.Tensor) -> dict[str, torch.Tensor]:
    """Old log-probs/values, KL-shaped rewards, GAE advantages (whitened) and returns, as (B, T)."""
    cfg = run.cfg.ppo  # type: ignore[attr-defined]
    tensors = rollout_tensors(run, rollout, values=True, reference=True)
    mask = tensors["mask"]
    tensors["kl"] = torch.where(
        mask.bool(),
        kl_estimate(tensors["old_logps"], tensors["ref_logps"], kind=cfg.kl_estimator),
        torch.zeros_like(mask),
    )
    rewards = kl_shaped_rewards(scores, tensors["kl"], mask, beta=run.kl_controller.value)
    advantages, returns = compute_gae(rewards, tensors["old_values"], mask, gamma=cfg.gamma, lam=cfg.lam)
    # The global token count decides: every process must take the same branch (whitening reduces).
    if cfg.whiten_advantages and run.dist.all_sum(float(mask.sum())) > 1:
        advantages = masked_whiten(advantages, mask, all_sum=run.dist.all_sum_tensor)
    tensors.update(advantages=advantages, returns=returns)
    return tensors


def _micro_loss(
    run: RLRun, rollout: Rollout, tensors: dict[str, torch.Tensor], micro: list[int]
) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped policy loss + vf_coef x clipped value loss - ent_coef x entropy over a micro-batch."""
    device = run.dist.device
    ppo = run.cfg.ppo  # type: ignore[attr-defined]
    out = micro_forward(run, rollout, micro, values=True)
    width = tensors["mask"].shape[1]
    lengths = out.lengths
    logps, values = to_rows(out.logps, lengths, width), to_rows(out.values, lengths, width)  # type: ignore[arg-type]
    entropy = to_rows(out.entropy_or_fail(), lengths, width)
    old = {
        key: tensors[key][micro].to(device)
        for key in ("old_logps", "old_values", "advantages", "returns", "mask")
    }
    mask = old["mask"]
    policy_loss, clip_fraction, approx_kl = ppo_policy_loss(
        logps, old["old_logps"], old["advantages"], mask, clip_range=ppo.clip_range
    )
    value_loss, value_clip_fraction = ppo_value_loss(
        values, old["old_values"], old["returns"], mask, clip_range_value=ppo.clip_range_value
    )
    mean_entropy = masked_mean(entropy, mask)
    loss = policy_loss + ppo.vf_coef * value_loss - ppo.ent_coef * mean_entropy
    return loss, {
        "policy_loss": float(policy_loss.detach()),
        "value_loss": float(value_loss.detach()),
        "clip_fraction": float(clip_fraction.detach()),
        "approx_kl": float(approx_kl.detach()),
        "value_clip_fraction": float(value_clip_fraction.detach()),
    }


def _step_metrics(rollout: Rollout, scores: Any, tensors: dict[str, torch.Tensor]) -> dict[str, float]:
    mask = tensors["mask"]
    n = len(rollout)
    return {
        "reward": float(scores.raw.mean()),
        "score": float(scores.penalised.mean()),
        "reward_std": float(scores.raw.std()) if n > 1 else 0.0,
        "kl": float(masked_sum(tensors["kl"], mask)) / n,
        "entropy": float(masked_mean(tensors["entropy"], mask)),
        "response_length": float(rollout.lengths.float().mean()),
        "stopped": float(rollout.stopped.float().mean()),
        "unscored": scores.unscored / n,
        "explained_variance": float(explained_variance(tensors["old_values"], tensors["returns"], mask)),
        "values_mean": float(masked_mean(tensors["old_values"], mask)),
        "returns_mean": float(masked_mean(tensors["returns"], mask)),
    }


def _advantage_metrics(
    advantages: torch.Tensor, mask: torch.Tensor, all_sum: Callable[[torch.Tensor], torch.Tensor]
) -> dict[str, float]:
    """Mean and (unbiased) std of the advantages the update sees, over the global batch: 0 and 1
    when whitened (up to eps), whatever the process count. Already global, so not process-averaged."""
    count, mean, squared_deviations = masked_moments(advantages, mask, all_sum=all_sum)
    n = float(count)
    return {
        "advantages_mean": float(mean),
        "advantages_std": math.sqrt(float(squared_deviations) / max(n - 1.0, 1.0)),
    }


@leaves_its_group
def run_ppo(
    cfg: PPOConfig,
    *,
    stop_after_step: int | None = None,
    rollouts: Callable[..., Rollout] = generate,
    before_finish: Callable[[RLRun], None] | None = None,
) -> RLResult:
    """Runs PPO as configured; outputs go to ``cfg.out``.

    Testing aids: ``stop_after_step``; ``rollouts`` replaces the sampling of the training rollouts
    (``training.rollout.generate``'s signature); ``before_finish`` sees the run before it is saved.
    """
    run, source, _ = start_run(
        cfg,
        description="ppo",
        samples_per_prompt=1,
        value_model=True,
        reference=True,
        kl_controller=kl_controller(cfg),
    )

    def held_out() -> dict[str, float]:
        return evaluate(run, source)

    try:
        if run.state.step == 0 and run.eval_prompts:
            run.write_eval(held_out())  # the starting point: reward of the SFT model, KL 0
        while run.state.step < run.total_steps:
            clock = PhaseClock()
            prompts, seed = run.next_prompts()
            with run.gathered():
                rollout = rollouts(run.policy, run.tokenizer, prompts, cfg=cfg, seed=seed)
            run.begin_step(rollout)
            clock.mark("generate")
            scores = score_replies(
                source,
                [p.chat for p in prompts],
                rollout.texts,
                rollout.stopped,
                unscored=cfg.reward.unscored,
                penalty=cfg.reward.stop_penalty,
            )
            clock.mark("reward")
            tensors = _experience(run, rollout, scores.penalised)
            clock.mark("logprobs")
            update_means, skipped = run.train_on(
                rollout, partial(_micro_loss, run, rollout, tensors), passes=cfg.ppo.epochs
            )
            clock.mark("train")
            record = run.process_mean({**_step_metrics(rollout, scores, tensors), **update_means})
            record.update(_advantage_metrics(tensors["advantages"], tensors["mask"], run.dist.all_sum_tensor))
            record["kl_coef"] = run.kl_controller.value
            run.kl_controller.update(record["kl"], cfg.rollout.prompts_per_step)
            record.update(skipped_updates=skipped, **clock.timings(run.dist.device))
            done = run.end_step(record, held_out)
            if done or (stop_after_step is not None and run.state.step >= stop_after_step):
                break
    finally:
        run.close()
    if before_finish is not None:
        before_finish(run)
    return finish_run(
        run,
        kind="ppo",
        stop_after_step=stop_after_step,
        extra={"kl_coef": run.kl_controller.value, "critic": cfg.ppo.critic},
    )


def ppo_command(cfg: PPOConfig, progress: Callable[[str], None] | None = None) -> CommandResult:
    """``alignkit ppo``: the run, and its final policy as the output."""
    return command_result("ppo", cfg.model, run_ppo(cfg))
