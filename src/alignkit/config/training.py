"""Config sections shared by every trainer (SFT, reward model, DPO, PPO, GRPO)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from alignkit.config.base import StrictModel


class TrainSection(StrictModel):
    """The optimisation loop. ``batch_size`` is examples per micro-batch per process; one optimizer
    step sees ``batch_size * grad_accum * processes`` examples."""

    epochs: float = Field(1.0, gt=0, description="passes over the training data (ignored when max_steps is set)")
    max_steps: int | None = Field(None, gt=0, description="optimizer steps; overrides epochs")
    batch_size: int = Field(4, gt=0, description="examples per micro-batch per process")
    grad_accum: int = Field(1, gt=0, description="micro-batches per optimizer step")
    lr: float = Field(2e-5, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    schedule: Literal["linear", "cosine", "constant"] = "cosine"
    warmup_steps: int = Field(0, ge=0)
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    max_grad_norm: float = Field(1.0, ge=0, description="0 = no clipping (the norm is still logged)")
    seed: int = 0
    packing: bool = Field(True, description="padding-free packed rows; false = right-padded rows")
    gradient_checkpointing: bool = False
    loss_chunk_size: int = Field(1024, gt=0, description="trained positions projected to the vocabulary at once")
    eval_every: int = Field(0, ge=0, description="eval every N steps (0 = only at epoch ends)")
    save_every: int = Field(0, ge=0, description="checkpoint every N steps (0 = only at the end)")
    keep_last: int = Field(2, ge=1, description="checkpoints kept (the best one is kept besides)")
    early_stopping_patience: int = Field(0, ge=0, description="stop after N evals without improvement (0 = off)")
    max_nonfinite_steps: int = Field(1, ge=0, description="skipped non-finite steps tolerated before aborting")
    log_every: int = Field(1, gt=0)
    compile: bool = Field(False, description="torch.compile each decoder layer (pays off on CUDA)")
    inject_nonfinite_at: list[int] = Field(default_factory=list,
                                           description="testing aid: make the loss NaN at these steps")


class LoraSection(StrictModel):
    r: int = Field(16, gt=0)
    alpha: float = Field(32, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] | str = Field("all-linear", description="module names, or all-linear")
    use_dora: bool = False
    use_rslora: bool = False
