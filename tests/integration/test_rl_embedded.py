"""Short PPO and GRPO LoRA runs on the embedded model (SmolLM2-135M-Instruct) raise held-out reward at bounded KL.

Reward: ``short_and_stops`` (brevity) with a stop penalty of 1 for replies cut at 20 tokens, on
short-answer prompts (``examples/rl``). Held-out: 8 prompts the runs never see, sampled with a fixed
seed before and after training. Each test prints its reward-vs-KL numbers and the rollout/training
time split (run with ``-s`` to see them).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alignkit.config.base import load_config
from alignkit.config.rl import GRPOConfig, PPOConfig
from alignkit.recipes.grpo import run_grpo
from alignkit.recipes.ppo import run_ppo

pytestmark = pytest.mark.usefixtures("one_thread")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "rl"


def common(tmp_path: Path) -> list[str]:
    held_out = tmp_path / "held_out.jsonl"
    held_out.write_text("".join((EXAMPLES / "prompts_eval.jsonl").read_text().splitlines(keepends=True)[:8]))
    return [
        "model=embedded",
        "device=cpu",
        f"data.train={EXAMPLES / 'prompts.jsonl'}",
        f"data.eval={held_out}",
        f"out={tmp_path / 'run'}",
        "finetune=lora",
        "lora.r=8",
        "reward.kind=function",
        "reward.function=alignkit.rewards.examples:short_and_stops",
        "reward.kwargs={max_chars: 100}",
        "reward.stop_penalty=1.0",
        "rollout.max_new_tokens=20",
        "train.batch_size=8",
        "train.lr=1e-3",  # at 2e-3 four LoRA steps overshoot: KL 11-19 nats/reply
        "train.max_steps=4",
    ]


def report(name: str, out: Path) -> tuple[dict, dict]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    before, after = [r for r in rows if r["kind"] == "eval"]
    train = [r for r in rows if r["kind"] == "train"]
    split = {k: round(sum(r[k] for r in train), 1) for k in ("time_generate_s", "time_reward_s",
                                                             "time_logprobs_s", "time_train_s")}  # fmt: skip
    print(
        f"\n{name}: held-out score {before['eval_score']:+.3f} -> {after['eval_score']:+.3f} "
        f"(reward {before['eval_reward']:+.3f} -> {after['eval_reward']:+.3f}, stopped "
        f"{before['eval_stopped']:.2f} -> {after['eval_stopped']:.2f}, length {before['eval_length']:.1f} -> "
        f"{after['eval_length']:.1f}) at KL {after['eval_kl']:.2f} nats/reply (k3 {after['eval_kl_k3_token']:.3f}"
        f"/token); train rewards {[round(r['reward'], 3) for r in train]}; time split {split}"
    )
    return before, after


@pytest.mark.integration
def test_ppo_raises_held_out_reward_at_bounded_kl(tmp_path: Path) -> None:
    cfg = load_config(PPOConfig, None, [*common(tmp_path), "rollout.prompts_per_step=8", "ppo.epochs=1"])
    run_ppo(cfg)
    before, after = report("ppo", tmp_path / "run")
    assert before["eval_kl"] == 0.0  # the policy starts as the reference
    assert after["eval_score"] > before["eval_score"] + 0.2
    assert 0.0 < after["eval_kl"] < 10.0


@pytest.mark.integration
def test_grpo_raises_held_out_reward_at_bounded_kl(tmp_path: Path) -> None:
    cfg = load_config(
        GRPOConfig, None, [*common(tmp_path), "rollout.prompts_per_step=2", "grpo.group_size=4", "train.lr=6e-4"]
    )
    run_grpo(cfg)
    before, after = report("grpo", tmp_path / "run")
    assert before["eval_kl"] == 0.0
    assert after["eval_score"] > before["eval_score"] + 0.2
    assert 0.0 < after["eval_kl"] < 10.0
