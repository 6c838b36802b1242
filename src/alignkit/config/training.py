"""Config sections shared by every trainer (SFT, reward model, DPO, PPO, GRPO)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import Field, model_validator

from alignkit.config.base import StrictModel


def parallel_from_accelerate(environ: Mapping[str, str]) -> Literal["fsdp"] | None:
    """``fsdp`` when ``accelerate launch`` was told to use FSDP2 (it exports ``ACCELERATE_USE_FSDP`` and
    ``FSDP_VERSION``), None when it was not asked for FSDP. FSDP1 is refused: alignkit shards with FSDP2."""
    if environ.get("ACCELERATE_USE_FSDP", "false").lower() not in ("1", "true"):
        return None
    if environ.get("FSDP_VERSION", "1") != "2":
        raise ValueError(
            "accelerate asks for FSDP1; alignkit shards with FSDP2 only: set fsdp_version: 2 in the "
            "accelerate config"
        )
    return "fsdp"


class TrainSection(StrictModel):
    """The optimisation loop. ``batch_size`` is examples per micro-batch per process; one optimizer
    step sees ``batch_size * grad_accum * processes`` examples."""

    epochs: float = Field(
        1.0, gt=0, description="passes over the training data (ignored when max_steps is set)"
    )
    max_steps: int | None = Field(None, gt=0, description="optimizer steps; overrides epochs")
    batch_size: int = Field(4, gt=0, description="examples per micro-batch per process")
    grad_accum: int = Field(1, gt=0, description="micro-batches per optimizer step")
    lr: float = Field(2e-5, gt=0, description="peak learning rate (after warmup)")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay (not on biases and norms)")
    adam_betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW beta1, beta2")
    adam_eps: float = Field(1e-8, description="AdamW epsilon")
    schedule: Literal["linear", "cosine", "constant"] = Field(
        "cosine", description="learning-rate decay after warmup"
    )
    warmup_steps: int = Field(0, ge=0, description="steps of linear warmup (wins over warmup_ratio)")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="warmup as a share of all steps")
    max_grad_norm: float = Field(1.0, ge=0, description="0 = no clipping (the norm is still logged)")
    seed: int = Field(0, description="seed of initialisation, shuffling and the held-out split")
    packing: bool = Field(True, description="padding-free packed rows; false = right-padded rows")
    gradient_checkpointing: bool = Field(
        False, description="recompute activations in the backward pass (less memory)"
    )
    loss_chunk_size: int = Field(
        1024, gt=0, description="trained positions projected to the vocabulary at once"
    )
    eval_every: int = Field(0, ge=0, description="eval every N steps (0 = only at epoch ends)")
    save_every: int = Field(0, ge=0, description="checkpoint every N steps (0 = only at the end)")
    keep_last: int = Field(2, ge=1, description="checkpoints kept (the best one is kept besides)")
    early_stopping_patience: int = Field(
        0, ge=0, description="stop after N evals without improvement (0 = off)"
    )
    probe_every: int = Field(
        0,
        ge=0,
        description="run the recipe's probes (its probe section) on the model every N steps (0 = off)",
    )
    probe_select: str | None = Field(
        None,
        description="a probe figure, probe.figure (e.g. grounded.accuracy_answerable), that keeps the best "
        "checkpoint (checkpoints/probe-best) and drives probe_patience",
    )
    probe_select_mode: Literal["max", "min"] = Field(
        "max", description="whether probe_select is better high or low"
    )
    probe_patience: int = Field(
        0, ge=0, description="stop after N probe rounds without a better probe_select figure (0 = off)"
    )
    max_nonfinite_steps: int = Field(
        1, ge=0, description="skipped non-finite steps tolerated before aborting"
    )
    log_every: int = Field(1, gt=0, description="log a metrics line every N steps")
    compile: bool = Field(False, description="torch.compile each decoder layer (pays off on CUDA)")
    parallel: Literal["ddp", "fsdp"] = Field(
        "ddp",
        description="with several processes: ddp (a full replica per process) or fsdp (FSDP2: weights, "
        "gradients and optimizer state sharded per decoder layer); accelerate's fsdp_version: 2 sets fsdp",
    )
    inject_nonfinite_at: list[int] = Field(
        default_factory=list, description="testing aid: make the loss NaN at these steps"
    )

    @model_validator(mode="before")
    @classmethod
    def _parallel_from_launcher(cls, data: Any) -> Any:
        """An unset ``parallel`` follows ``accelerate launch --config_file`` (an explicit value wins)."""
        if isinstance(data, dict) and "parallel" not in data:
            launched = parallel_from_accelerate(os.environ)
            if launched is not None:
                data = {**data, "parallel": launched}
        return data

    @model_validator(mode="after")
    def _fsdp_without_compile(self) -> Self:
        if self.parallel == "fsdp" and self.compile:
            raise ValueError(
                "train.compile=true is not supported with train.parallel=fsdp; turn one of them off"
            )
        return self


TrainingProbeName = Literal["hello", "grounded"]
TRAINING_PROBES: tuple[TrainingProbeName, ...] = ("hello", "grounded")


class TrainingProbeSection(StrictModel):
    """Probes run on the model being trained, every ``train.probe_every`` steps (cheap settings)."""

    probes: list[TrainingProbeName] = Field(
        default_factory=lambda: list(TRAINING_PROBES), description="hello (stop rate, loops) and/or grounded"
    )
    grounded_data: str | None = Field(None, description="a grounded set (the dev split, never an eval set)")
    max_items: int | None = Field(32, gt=0, description="grounded items asked (the first N)")
    hello_samples: int = Field(2, ge=0, description="sampled replies per greeting")
    max_new_tokens: int = Field(48, gt=0, description="reply length limit in tokens")
    batch_size: int = Field(64, gt=0, description="replies generated together")


def refuse_fsdp_with_qlora(finetune: str, train: TrainSection) -> None:
    """QLoRA's 4-bit weights (bitsandbytes ``Params4bit``, packed bytes plus per-block quantisation state) are
    not wired up for FSDP2 sharding; a config asking for both is refused before any model loads."""
    if finetune == "qlora" and train.parallel == "fsdp":
        raise ValueError(
            "finetune=qlora cannot be sharded with train.parallel=fsdp; use finetune=lora or "
            "train.parallel=ddp"
        )


class RunFields(StrictModel):
    """How a training command treats its ``out`` folder (one folder holds one run: ``training/run_folder.py``)."""

    resume: str | None = Field(
        "auto",
        description="auto (continue this folder's run) | a checkpoint folder | "
        "none (train again from step 0)",
    )
    overwrite: bool = Field(
        False,
        description="replace the run in out, even another command's (the old one "
        "is kept aside until the new one completes)",
    )


class LoraSection(StrictModel):
    r: int = Field(16, gt=0, description="LoRA rank")
    alpha: float = Field(32, gt=0, description="LoRA scale numerator: the update is scaled by alpha / r")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the LoRA input")
    target_modules: list[str] | str = Field("all-linear", description="module names, or all-linear")
    use_dora: bool = Field(False, description="DoRA: weight-decomposed LoRA")
    use_rslora: bool = Field(False, description="rsLoRA: scale by alpha / sqrt(r)")
