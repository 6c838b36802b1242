"""Config models of the training recipes: sft, dpo, rm (and ``alignkit score``).

PPO and GRPO share their fields and live in ``config/rl.py``.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from alignkit.config.base import StrictModel
from alignkit.config.common import DataConfig, ModelFields
from alignkit.config.training import LoraSection, TrainSection, refuse_fsdp_with_qlora

LossName = Literal["sigmoid", "ipo", "cdpo", "simpo", "orpo"]
ReferenceName = Literal["auto", "copy", "adapter_disabled", "precomputed", "none"]


class SFTConfig(ModelFields):
    output_dir: str = Field("runs/sft", description="where checkpoints, metrics and the result go")
    finetune: Literal["full", "lora", "qlora"] = "lora"
    lora: LoraSection = Field(default_factory=LoraSection)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainSection = Field(default_factory=TrainSection)
    resume: str | None = Field("auto", description="auto | a checkpoint folder | none")
    allow_lint_failures: bool = Field(False, description="train even when lint finds blocking problems")

    @model_validator(mode="after")
    def _shardable(self) -> Self:
        refuse_fsdp_with_qlora(self.finetune, self.train)
        return self


class DPOConfig(ModelFields):
    output_dir: str = Field("runs/dpo", description="where checkpoints, metrics and the result go")
    finetune: Literal["full", "lora", "qlora"] = "lora"
    lora: LoraSection = Field(default_factory=LoraSection)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainSection = Field(default_factory=TrainSection)
    loss: LossName = Field(
        "sigmoid", description="sigmoid (DPO) | ipo | cdpo (label smoothing) | simpo | orpo"
    )
    beta: float | None = Field(None, gt=0, description="loss temperature; default 0.1 (SimPO: 2.0); ORPO's λ")
    label_smoothing: float = Field(
        0.0, ge=0.0, lt=0.5, description="cDPO/SimPO: probability a label is flipped"
    )
    simpo_gamma: float = Field(0.5, ge=0.0, description="SimPO target margin γ (TRL's simpo_gamma)")
    reference: ReferenceName = Field(
        "auto",
        description="auto | copy | adapter_disabled | precomputed | none (auto: none for simpo/orpo, "
        "precomputed with adapter=, copy for full, adapter_disabled for lora)",
    )
    sft_weight: float = Field(
        0.0,
        ge=0.0,
        description="adds this times the chosen reply's per-token NLL to sigmoid/ipo/cdpo/simpo (RPO, TRL's "
        "rpo_alpha): keeps DPO from lowering the chosen reply's likelihood along with the rejected one",
    )
    resume: str | None = Field("auto", description="auto | a checkpoint folder | none")
    allow_lint_failures: bool = Field(False, description="train even when lint finds blocking problems")

    @model_validator(mode="after")
    def _shardable(self) -> Self:
        refuse_fsdp_with_qlora(self.finetune, self.train)
        return self


class RewardConfig(ModelFields):
    output_dir: str = Field("runs/rm", description="where checkpoints, metrics and the reward model go")
    finetune: Literal["full", "lora"] = Field(
        "lora", description="the trunk: full or LoRA (the head always trains)"
    )
    lora: LoraSection = Field(default_factory=LoraSection)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainSection = Field(default_factory=TrainSection)
    use_margin: bool = Field(
        True, description="subtract the records' margin column (when present) in the loss"
    )
    center_rewards_coefficient: float = Field(0.0, ge=0.0, description="weight of (r_c + r_r)^2 (0 = off)")
    resume: str | None = Field("auto", description="auto | a checkpoint folder | none")
    allow_lint_failures: bool = Field(False, description="train even when lint finds blocking problems")


class ScoreConfig(StrictModel):
    model: str | None = Field(None, description="a reward model folder written by alignkit rm")
    data: str | None = Field(
        None, description="records: prompt+completion, messages, or prompt/chosen/rejected"
    )
    out: str | None = Field(
        None, description="output JSONL: each input record plus score (or chosen/rejected_score)"
    )
    kind: Literal["auto", "messages", "prompt_completion", "preference"] = "auto"
    max_length: int = Field(2048, gt=8, description="a longer record is an error naming its line")
    batch_size: int = Field(8, gt=0, description="sequences per packed forward")
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
