"""Config sections shared by several commands."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from alignkit.config.base import StrictModel

# The grounded probe and the grounded-dialog builder put this before the facts: a model trained on the
# dialogs is probed with the words it was trained on.
DEFAULT_GROUNDED_INSTRUCTION = (
    "Answer the user's question using only the information below. "
    "If the information does not contain the answer, say that you don't know."
)


class ModelFields(StrictModel):
    """Which model to load and how. Mixed into every command that loads a model."""

    model: str = Field("embedded", description="embedded | tiny-random | a model folder | a .gguf file")
    adapter: str | None = Field(None, description="a PEFT adapter folder applied on top of the model")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto = bf16 on CUDA, fp32 on CPU"
    )
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    trust_remote_code: bool = Field(False, description="run a model folder's custom code (off by default)")
    allow_pickle: bool = Field(False, description="allow .bin/.pt weights, which can run code when loaded")


class DataConfig(StrictModel):
    """Where the records are and how they become token ids."""

    train: str | None = Field(None, description="training data: .jsonl/.json/.parquet/.csv or save_to_disk folder")
    eval: str | None = Field(None, description="evaluation data file (same formats)")
    eval_fraction: float = Field(0.0, ge=0.0, lt=1.0, description="hold out this share of train when no eval file")
    kind: Literal["auto", "messages", "prompt_completion", "preference", "alpaca", "text"] = Field(
        "auto", description="record kind; auto-detected from the first record"
    )
    max_length: int = Field(1024, gt=8, description="tokens per example after formatting")
    truncation: Literal["keep_start", "keep_end", "drop", "error"] = Field(
        "keep_start", description="what to do with an example longer than max_length"
    )
    on_bad_record: Literal["error", "skip"] = Field(
        "error", description="error stops at the first bad record; skip counts and reports them"
    )
    raw_text: bool = Field(False, description="continuation training: no chat template, plain concatenation")
    add_eos: bool = Field(True, description="raw-text mode: append EOS to each example")
    chat_template: str | None = Field(None, description="a Jinja chat template (text or .jinja path) to use instead")
