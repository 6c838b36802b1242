"""Config models of the training recipes: sft, dpo, rm (and ``alignkit score``).

PPO and GRPO share their fields and live in ``config/rl.py``.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field, model_validator

from alignkit.config.base import StrictModel
from alignkit.config.common import DEVICE_PATTERN, DataConfig, ModelFields
from alignkit.config.training import (
    LoraSection,
    RunFields,
    TrainingProbeSection,
    TrainSection,
    refuse_fsdp_with_qlora,
)

LossName = Literal["sigmoid", "ipo", "cdpo", "simpo", "orpo"]
ReferenceName = Literal["auto", "copy", "adapter_disabled", "precomputed", "none"]


# SFT's learning rate when none is given. A LoRA update is the product of two small matrices, B of them
# starting at zero: at full fine-tuning's 2e-5 it barely moves in a short run. LORA_SFT_LR: the quickstart's
# measurement (README, "LoRA learning rate").
FULL_SFT_LR = 2e-5
LORA_SFT_LR = 2e-4


class SFTConfig(ModelFields, RunFields):
    out: str = Field("runs/sft", description="where checkpoints, metrics and the result go")
    finetune: Literal["full", "lora", "qlora"] = Field("lora", description="train all weights, a LoRA adapter, "
                                                          "or a LoRA adapter on a 4-bit base")
    lora: LoraSection = Field(default_factory=LoraSection)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainSection = Field(default_factory=lambda: TrainSection(lr=LORA_SFT_LR),
                                description=f"train.lr defaults to {LORA_SFT_LR:g} for lora/qlora, "
                                f"{FULL_SFT_LR:g} for full")
    probe: TrainingProbeSection = Field(default_factory=TrainingProbeSection,
                                        description="probes run every train.probe_every steps")
    allow_lint_failures: bool = Field(False, description="train even when lint finds blocking problems")

    @model_validator(mode="before")
    @classmethod
    def _lr_for_finetune(cls, data: Any) -> Any:
        """An unset ``train.lr`` follows ``finetune``: a LoRA adapter needs a larger step than full weights."""
        if not isinstance(data, dict):
            return data
        train = data.get("train")
        if isinstance(train, TrainSection) or (isinstance(train, dict) and "lr" in train):
            return data
        lr = FULL_SFT_LR if data.get("finetune", "lora") == "full" else LORA_SFT_LR
        return {**data, "train": {**(train if isinstance(train, dict) else {}), "lr": lr}}

    @model_validator(mode="after")
    def _shardable(self) -> Self:
        refuse_fsdp_with_qlora(self.finetune, self.train)
        if self.train.probe_every and "grounded" in self.probe.probes and not self.probe.grounded_data:
            raise ValueError("train.probe_every with the grounded probe needs probe.grounded_data (the dev split)")
        return self


class DPOConfig(ModelFields, RunFields):
    out: str = Field("runs/dpo", description="where checkpoints, metrics and the result go")
    finetune: Literal["full", "lora", "qlora"] = Field("lora", description="train all weights, a LoRA adapter, "
                                                          "or a LoRA adapter on a 4-bit base")
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
    allow_lint_failures: bool = Field(False, description="train even when lint finds blocking problems")

    @model_validator(mode="after")
    def _shardable(self) -> Self:
        refuse_fsdp_with_qlora(self.finetune, self.train)
        return self


class RewardConfig(ModelFields, RunFields):
    out: str = Field("runs/rm", description="where checkpoints, metrics and the reward model go")
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
    device: str = Field("auto", pattern=DEVICE_PATTERN, description="auto | cpu | cuda | cuda:N | mps")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
