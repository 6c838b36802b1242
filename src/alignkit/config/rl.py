"""Configs of the online RL commands, ``alignkit ppo`` and ``alignkit grpo``.

Both share the model, prompts, reward, rollout and optimisation sections; each adds its own
algorithm section (``ppo:`` or ``grpo:``). In RL, ``train.max_steps`` counts *rollout steps*: each
samples ``rollout.prompts_per_step`` prompts, generates, scores, then makes one or more optimizer
updates on mini-batches of ``train.batch_size * train.grad_accum`` replies.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from alignkit.config.base import StrictModel
from alignkit.config.common import ModelFields
from alignkit.config.training import LoraSection, RunFields, TrainSection


class PromptDataSection(StrictModel):
    """Prompts only: replies come from the policy."""

    train: str | None = Field(
        None, description="prompts: .txt (one a line) or JSONL/JSON/Parquet/CSV with prompt or messages"
    )
    eval: str | None = Field(None, description="held-out prompts (same formats) for reward-vs-KL evaluation")
    eval_fraction: float = Field(
        0.0, ge=0.0, lt=1.0, description="hold out this share of train when no eval file"
    )
    system: str | None = Field(None, description="a system message put before each plain prompt")
    max_prompt_length: int = Field(512, gt=0, description="prompts longer than this (tokens) are dropped")
    chat_template: str | None = Field(None, description="a Jinja chat template to use instead of the model's")


class RewardSection(StrictModel):
    """Where the scalar reward of a reply comes from."""

    kind: Literal["function", "reward_model", "llm"] = Field(
        "function",
        description="function (import path) | reward_model (alignkit rm folder) | llm (1-10 judge)",
    )
    function: str | None = Field(
        None,
        description="kind=function: 'module:function' (or a dotted path) taking (prompt_chat, reply_text) -> "
        "float, e.g. alignkit.rewards.examples:short_and_stops",
    )
    kwargs: dict[str, Any] = Field(default_factory=dict, description="kind=function: keyword arguments")
    reward_model: str | None = Field(None, description="kind=reward_model: a folder from alignkit rm")
    judge_model: str | None = Field(None, description="kind=llm: a local model spec for the judge")
    url: str | None = Field(
        None, description="kind=llm: an OpenAI-compatible base URL instead of a local model"
    )
    api_model: str | None = Field(None, description="kind=llm with url: the model name the endpoint serves")
    api_key_env: str | None = Field(
        None, description="kind=llm with url: environment variable holding the key"
    )
    prompt: str | None = Field(None, description="kind=llm: rating prompt with {conversation} and {response}")
    max_new_tokens: int = Field(8, gt=0, description="kind=llm: tokens the judge may answer with")
    batch_size: int = Field(8, gt=0, description="sequences per forward of a local reward model or judge")
    unscored: float = Field(
        0.0, description="reward of a reply the source could not score (judge gave no number)"
    )
    stop_penalty: float = Field(
        1.0,
        ge=0.0,
        description="subtracted from the reward of a reply cut at max_new_tokens without end-of-turn",
    )


class RolloutSection(StrictModel):
    """Sampling replies from the policy (transformers generate with a KV cache, left-padded prompts)."""

    prompts_per_step: int = Field(8, gt=0, description="prompts per rollout step, over all processes")
    max_new_tokens: int = Field(
        64, gt=0, description="reply length limit; cut replies get reward.stop_penalty"
    )
    temperature: float = Field(1.0, gt=0.0, description="sampling temperature; log-probs use the same one")
    top_p: float = Field(
        1.0, gt=0.0, le=1.0, description="< 1 samples off-policy (log-probs ignore truncation)"
    )
    top_k: int = Field(0, ge=0, description="0 = off; > 0 samples off-policy, as top_p")
    batch_size: int = Field(16, gt=0, description="sequences generated together")
    eval_seed: int = Field(1234, description="sampling seed of held-out evaluation (the same every eval)")


class PPOSection(StrictModel):
    """PPO-RLHF (Ziegler et al., 2019; Stiennon et al., 2020; Ouyang et al., 2022)."""

    epochs: int = Field(4, gt=0, description="passes over each rollout batch")
    gamma: float = Field(1.0, ge=0.0, le=1.0, description="discount γ of GAE")
    lam: float = Field(0.95, ge=0.0, le=1.0, description="λ of GAE")
    clip_range: float = Field(0.2, gt=0.0, description="policy ratio clip ε")
    clip_range_value: float = Field(0.2, gt=0.0, description="value clip around the rollout-time values")
    vf_coef: float = Field(0.1, ge=0.0, description="weight of the value loss")
    ent_coef: float = Field(0.0, ge=0.0, description="weight of the entropy bonus")
    whiten_advantages: bool = Field(True, description="normalise advantages over the rollout batch")
    kl_estimator: Literal["k1", "k2", "k3"] = Field(
        "k1", description="per-token KL estimate put in the reward"
    )
    kl_coef: float = Field(0.05, ge=0.0, description="β of the KL penalty (the start value when adaptive)")
    adaptive_kl: bool = Field(False, description="adapt β toward kl_target (Ziegler et al.)")
    kl_target: float = Field(6.0, gt=0.0, description="adaptive: target KL per reply, in nats")
    kl_horizon: float = Field(10000.0, gt=0.0, description="adaptive: horizon in replies")
    critic: Literal["head", "model"] = Field(
        "head", description="head: Linear on the policy's last hidden state | model: a separate trunk copy"
    )


class GRPOSection(StrictModel):
    """GRPO (Shao et al., 2024, DeepSeekMath)."""

    group_size: int = Field(4, ge=2, description="G replies sampled per prompt")
    iterations: int = Field(1, gt=0, description="μ: passes over each rollout batch (1 = on-policy)")
    clip_range: float = Field(0.2, gt=0.0, description="ratio clip ε (matters when iterations > 1)")
    beta: float = Field(
        0.04, ge=0.0, description="weight of the k3 KL to the reference in the loss (0 = none)"
    )
    scale_rewards: bool = Field(True, description="divide by the group std (false: Dr. GRPO)")


class RLTrainSection(TrainSection):
    """The optimisation section with RL defaults. ``max_steps`` counts rollout steps; ``batch_size`` is
    replies per micro-batch and ``batch_size * grad_accum`` replies make one optimizer update."""

    max_steps: int | None = Field(50, gt=0, description="rollout steps (None: epochs over the prompts)")
    lr: float = Field(1e-5, gt=0)
    schedule: Literal["linear", "cosine", "constant"] = "constant"



class RLFields(ModelFields, RunFields):
    """Shared by ppo and grpo. ``adapter=SFT_DIR`` is the SFT model: the reference, and the start."""

    out: str = Field("runs/rl", description="where checkpoints, metrics and the result go")
    finetune: Literal["full", "lora"] = Field("lora", description="train the whole policy or a LoRA adapter")
    lora: LoraSection = Field(default_factory=LoraSection)
    data: PromptDataSection = Field(default_factory=PromptDataSection)
    reward: RewardSection = Field(default_factory=RewardSection)
    rollout: RolloutSection = Field(default_factory=RolloutSection)
    train: RLTrainSection = Field(default_factory=RLTrainSection)


class PPOConfig(RLFields):
    out: str = Field("runs/ppo", description="where checkpoints, metrics and the result go")
    ppo: PPOSection = Field(default_factory=PPOSection)


class GRPOConfig(RLFields):
    out: str = Field("runs/grpo", description="where checkpoints, metrics and the result go")
    grpo: GRPOSection = Field(default_factory=GRPOSection)
