"""PPO on the tiny random Llama: step-0 identities, the stop penalty, learning, resume, guards, export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from alignkit.config.base import load_config
from alignkit.config.rl import PPOConfig
from alignkit.data.dataset import data_fingerprint
from alignkit.errors import ConfigError
from alignkit.losses.rl import kl_estimate, ppo_policy_loss
from alignkit.models.logprobs import to_rows, token_forward
from alignkit.recipes import rl
from alignkit.recipes.ppo import kl_shaped_rewards, run_ppo
from alignkit.rewards import examples
from alignkit.rewards.scorers import FunctionScorer, import_object, make_scorer
from alignkit.training.distributed import Distributed
from alignkit.training.rollout import generate
from alignkit.training.step import NonFiniteAbort
from tests.helpers.rl import (
    check_two_processes_match_one,
    metrics,
    needs_torchrun,
    rl_args,
)

pytestmark = pytest.mark.usefixtures("one_thread")









# ---------------------------------------------------------------------------------------------
# Rewards


def test_stop_penalty_goes_to_cut_replies_only() -> None:
    """Raw rewards [1, 1, 0]; the second reply was cut at the limit: penalised [1, 1 - 0.5, 0]."""
    source = FunctionScorer("alignkit.rewards.examples:mentions_word", {"word": "thanks"})
    chats = [[{"role": "user", "content": "hi"}]] * 3
    stopped = torch.tensor([True, False, True])
    scores = rl.score_replies(
        source, chats, ["Thanks!", "thanks, and then", "no"], stopped, unscored=0.0, penalty=0.5
    )
    assert scores.raw.tolist() == [1.0, 1.0, 0.0]
    assert scores.penalised.tolist() == [1.0, 0.5, 0.0]


def test_unscored_replies_get_the_configured_reward() -> None:
    class Judge:
        def score(self, chats, replies):
            return [None, 3.0]

    scores = rl.score_replies(
        Judge(), [[], []], ["a", "b"], torch.tensor([True, True]), unscored=-2.0, penalty=1.0
    )
    assert scores.raw.tolist() == [-2.0, 3.0] and scores.unscored == 1


def test_reward_function_import_paths() -> None:
    assert import_object("alignkit.rewards.examples.short_and_stops") is examples.short_and_stops
    assert import_object("alignkit.rewards.examples:mentions_word") is examples.mentions_word
    with pytest.raises(ConfigError, match="cannot import"):
        import_object("alignkit.rewards.examples:no_such_reward")


def test_kl_shaped_rewards_put_the_score_on_the_last_reply_token() -> None:
    """Replies of 3 and 1 tokens, kl 0.5 everywhere, β 0.1: -0.05 per token, the score added at t = L - 1."""
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    kl = torch.full((2, 3), 0.5)
    rewards = kl_shaped_rewards(torch.tensor([2.0, -1.0]), kl, mask, beta=0.1)
    expected = torch.tensor([[-0.05, -0.05, 1.95], [-1.05, 0.0, 0.0]])
    assert torch.allclose(rewards, expected)


# ---------------------------------------------------------------------------------------------
# Step 0: policy == reference


def test_at_step_zero_kl_is_zero_and_the_ratio_is_one(tmp_path: Path) -> None:
    """LoRA (reference = adapter disabled); the full fine-tuning reference (a frozen copy) is checked
    by ``test_ppo_raises_reward_at_bounded_kl``, whose first rollout has KL exactly 0."""
    cfg = load_config(PPOConfig, None, rl_args(tmp_path, "run", "train.batch_size=4"))
    run, _, _ = rl.start_run(
        cfg, description="ppo", samples_per_prompt=1, value_model=True, reference=True
    )
    prompts, seed = run.next_prompts()
    rollout = generate(run.policy, run.tokenizer, prompts, cfg=cfg, seed=seed)
    tensors = rl.rollout_tensors(run, rollout, values=True, reference=True)
    mask = tensors["mask"]
    assert torch.equal(tensors["ref_logps"], tensors["old_logps"])
    for kind in ("k1", "k2", "k3"):
        assert float(kl_estimate(tensors["old_logps"], tensors["ref_logps"], kind=kind).abs().max()) == 0.0
    assert float(tensors["old_values"].abs().max()) == 0.0  # the value head starts at zero
    for start in range(0, len(rollout), cfg.train.batch_size):  # the same micro-batches, now with gradient
        micro = list(range(start, start + cfg.train.batch_size))
        batch = rollout.batch(micro, packed=True, pad_id=run.pad_id)
        out = token_forward(run.policy, batch, temperature=0.1, chunk_size=1024)
        logps = to_rows(out.logps, out.lengths, mask.shape[1])
        assert logps.requires_grad
        ratio = torch.exp(logps - tensors["old_logps"][micro]) * mask[micro]
        assert torch.equal(ratio, mask[micro])
        _, clip_fraction, approx_kl = ppo_policy_loss(
            logps, tensors["old_logps"][micro], torch.randn_like(logps), mask[micro], clip_range=0.2
        )
        assert float(clip_fraction) == 0.0 and float(approx_kl) == 0.0
    run.close()


# ---------------------------------------------------------------------------------------------
# Learning, resume, guards


def test_ppo_raises_reward_at_bounded_kl(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = load_config(
        PPOConfig,
        None,
        rl_args(tmp_path, "run", "finetune=full", "train.lr=2e-4", "train.max_steps=6", "ppo.epochs=2"),
    )
    result = run_ppo(cfg)
    rows = metrics(out)
    rewards = [r["reward"] for r in rows]
    assert rows[0]["kl"] == 0.0  # the first rollout comes from the reference itself
    assert sum(rewards[-2:]) / 2 > sum(rewards[:2]) / 2 + 0.2, rewards
    assert all(0.0 <= r["kl"] < 8.0 for r in rows), [r["kl"] for r in rows]  # < 1 nat per token
    for key in ("entropy", "clip_fraction", "value_loss", "explained_variance", "response_length", "stopped"):
        assert all(key in r for r in rows), key
    assert all(r["time_generate_s"] > 0 and r["time_train_s"] > 0 for r in rows)
    assert result.output == out / "model" and (out / "run.json").is_file()
    # run.json names the data it was built from, as the SFT/DPO/RM manifests do.
    assert json.loads((out / "run.json").read_text())["data_fingerprint"] == data_fingerprint(cfg.data.train)
    start = rl.load_policy(cfg, Distributed())[1].state_dict()
    trained = load_file(str(out / "model" / "model.safetensors"))
    assert any(not torch.equal(start[k], trained[k]) for k in trained if k in start)


RESUME = ("finetune=lora", "train.lr=1e-2", "train.batch_size=4", "ppo.epochs=1", "ppo.critic=model",
          "ppo.adaptive_kl=true", "ppo.kl_target=0.5", "ppo.kl_horizon=100", "train.max_steps=3",
          "train.save_every=2")  # fmt: skip


def test_resume_is_bit_identical(tmp_path: Path) -> None:
    straight = tmp_path / "straight"
    run_ppo(load_config(PPOConfig, None, rl_args(tmp_path, "straight", *RESUME)))
    resumed = tmp_path / "resumed"
    cfg = load_config(PPOConfig, None, rl_args(tmp_path, "resumed", *RESUME))
    first = run_ppo(cfg, stop_after_step=2)
    assert first.state.step == 2 and not (resumed / "run.json").exists()
    second = run_ppo(cfg)
    assert second.state.step == 3
    a = load_file(str(straight / "checkpoints" / "step-000003" / "trainable.safetensors"))
    b = load_file(str(resumed / "checkpoints" / "step-000003" / "trainable.safetensors"))
    assert a.keys() == b.keys() and any("value_model.lm" in k for k in a)
    for name in a:
        assert torch.equal(a[name], b[name]), name

    def comparable(out: Path) -> list[dict]:
        return [
            {k: v for k, v in r.items() if not k.startswith(("time_", "step_time", "peak_mem"))}
            for r in metrics(out)
        ]

    assert comparable(straight) == comparable(resumed)
    assert len({r["kl_coef"] for r in metrics(straight)}) > 1  # the adaptive controller moved and resumed


def test_nonfinite_update_is_skipped_and_aborts_past_the_limit(tmp_path: Path) -> None:
    cfg = load_config(
        PPOConfig,
        None,
        rl_args(
            tmp_path,
            "run",
            "train.max_steps=2",
            "ppo.epochs=1",
            "train.inject_nonfinite_at=[1]",
            "train.max_nonfinite_steps=0",
        ),  # fmt: skip
    )
    with pytest.raises(NonFiniteAbort, match="max_nonfinite_steps"):
        run_ppo(cfg)
    skipped = metrics(tmp_path / "run", "nonfinite")
    assert len(skipped) == 1 and skipped[0]["step"] == 1
    assert any("prompts.jsonl#" in name for name in skipped[0]["records"])


def test_config_refusals(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="dropout"):
        run_ppo(load_config(PPOConfig, None, rl_args(tmp_path, "a", "lora.dropout=0.1")))
    with pytest.raises(ConfigError, match="mini-batches"):
        run_ppo(load_config(PPOConfig, None, rl_args(tmp_path, "b", "train.batch_size=3")))


# ---------------------------------------------------------------------------------------------
# Two processes (torchrun, gloo on the CPU): tests/helpers/rl.py runs them







@needs_torchrun
def test_ppo_two_processes_match_one_process_and_whiten_over_the_global_batch(tmp_path: Path) -> None:
    """8 prompts per step: 1 process with micro-batches of 4 x grad_accum 2, or 2 processes of 4 each.
    Whitening per process would shift the advantages (and every loss) of the 2-process run."""
    args = rl_args(tmp_path, "x", "train.lr=2e-3", "train.max_steps=2", "ppo.epochs=2", "train.batch_size=4")
    args = [a for a in args if not a.startswith("out=")]
    check_two_processes_match_one(
        tmp_path, "ppo", args, ["train.grad_accum=1"], ["train.grad_accum=2"], port=29534,
        compared=("reward", "kl", "advantages_mean", "advantages_std", "loss", "policy_loss", "value_loss",
                  "clip_fraction", "approx_kl"),
    )  # fmt: skip
    for row in metrics(tmp_path / "two"):  # the global batch's whitened advantages
        assert abs(row["advantages_mean"]) < 1e-5 and abs(row["advantages_std"] - 1.0) < 1e-5, row


# ---------------------------------------------------------------------------------------------
# An SFT adapter: merged first (reference = SFT model), exported as one stacked adapter


def test_lora_on_an_sft_adapter_references_sft_and_exports_a_stacked_adapter(tmp_path: Path) -> None:
    from peft import PeftModel

    from alignkit.config.training import LoraSection
    from alignkit.models.adapters import apply_lora
    from alignkit.models.loader import load_model, load_tokenizer

    torch.manual_seed(1)
    sft = apply_lora(load_model("tiny-random", device="cpu", seed=0).model, LoraSection(r=4))
    with torch.no_grad():
        for name, param in sft.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.2)
    sft.save_pretrained(tmp_path / "sft")
    cfg = load_config(PPOConfig, None, rl_args(tmp_path, "run", f"adapter={tmp_path / 'sft'}", "lora.r=2"))
    _, policy = rl.load_policy(cfg, Distributed())
    ids = torch.tensor([[1, 9690, 198, 2683, 314, 260, 3575, 282, 4649, 47]])
    with torch.no_grad():
        sft_logits = sft(input_ids=ids).logits
        with policy.disable_adapter():
            assert torch.allclose(policy(input_ids=ids).logits, sft_logits, atol=1e-5)
        for name, param in policy.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.2)
        policy_logits = policy(input_ids=ids).logits
    assert not torch.allclose(policy_logits, sft_logits, atol=1e-3)
    final = rl.save_policy(cfg, policy, load_tokenizer("embedded"), tmp_path / "run")
    reloaded = PeftModel.from_pretrained(load_model("tiny-random", device="cpu", seed=0).model, final)
    with torch.no_grad():
        assert torch.allclose(reloaded(input_ids=ids).logits, policy_logits, atol=1e-5)
    assert not (tmp_path / "run" / ".rl-adapter-on-sft").exists()


def test_reward_model_and_llm_judge_sources(tmp_path: Path) -> None:
    from alignkit.config.rl import RewardSection
    from alignkit.models.loader import load_model
    from alignkit.models.reward_head import RewardModel, save_reward_model

    loaded = load_model("tiny-random", device="cpu", seed=0)
    save_reward_model(RewardModel(loaded.model), loaded.tokenizer, tmp_path / "rm", base_model="tiny-random")
    chats = [[{"role": "user", "content": "Say hello."}]] * 2
    rm = make_scorer(
        RewardSection(kind="reward_model", reward_model=str(tmp_path / "rm")), device="cpu", dtype="auto"
    )
    values = rm.score(chats, ["Hello!", "Goodbye."])
    assert all(isinstance(v, float) for v in values) and values[0] != values[1]
    judge = make_scorer(
        RewardSection(kind="llm", judge_model="tiny-random", max_new_tokens=4), device="cpu", dtype="auto"
    )
    assert len(judge.score(chats, ["Hello!", "Goodbye."])) == 2  # a random judge rarely answers 1-10
