"""Config sections shared by several commands."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from alignkit.config.base import StrictModel

# The text before the facts of a grounded system turn: training data, the probe, chat and serving.
DEFAULT_GROUNDED_INSTRUCTION = (
    "Answer the user's question using only the information below. "
    "If the information does not contain the answer, say that you don't know."
)


BUILT_IN_MODELS = ("embedded", "tiny-random")
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")  # a Hugging Face model id: org/name
DEVICE_PATTERN = r"^(auto|cpu|mps|cuda(:\d+)?)$"


def portable_spec(spec: str) -> str:
    """A model spec that means the same from any working directory: built-in names and Hugging Face ids (which
    name no folder here) as they are, a path made absolute."""
    path = Path(spec).expanduser()
    return str(path.resolve()) if spec not in BUILT_IN_MODELS and path.exists() else spec


def adapter_base(adapter: str) -> str | None:
    """The base model an adapter folder records (``base_model_name_or_path`` in ``adapter_config.json``), when
    it is one alignkit can load: a built-in model, an existing absolute path, or a Hugging Face id (found in the
    local cache when loaded)."""
    try:
        recorded = json.loads((Path(adapter) / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    base = recorded.get("base_model_name_or_path") if isinstance(recorded, dict) else None
    if not isinstance(base, str) or not base:
        return None
    if base in BUILT_IN_MODELS or (Path(base).is_absolute() and Path(base).exists()) or HUB_ID.fullmatch(base):
        return base
    return None


class ModelFields(StrictModel):
    """Which model to load and how. Mixed into every command that loads a model.

    With ``adapter`` and no ``model``, the model is the base the adapter was trained on."""

    model: str = Field("embedded", description="embedded | tiny-random | a model folder | a .gguf file")
    adapter: str | None = Field(None, description="a PEFT adapter folder applied on top of the model")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto = bf16 on CUDA, fp32 on CPU"
    )
    device: str = Field("auto", pattern=DEVICE_PATTERN, description="auto | cpu | cuda | cuda:N | mps")
    trust_remote_code: bool = Field(False, description="run a model folder's custom code (off by default)")
    allow_pickle: bool = Field(False, description="allow .bin/.pt weights, which can run code when loaded")

    @model_validator(mode="before")
    @classmethod
    def _model_from_adapter(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("model") is None and isinstance(data.get("adapter"), str):
            base = adapter_base(data["adapter"])
            if base is not None:
                data = {**data, "model": base}
        return data


class DataConfig(StrictModel):
    """Where the records are and how they become token ids."""

    train: str | None = Field(None, description="training data: .jsonl/.json/.parquet/.csv or save_to_disk folder")
    eval: str | None = Field(None, description="evaluation data file (same formats)")
    eval_fraction: float = Field(0.0, ge=0.0, lt=1.0, description="hold out this share of train when no eval file")
    kind: Literal["auto", "messages", "prompt_completion", "preference", "alpaca", "text", "sharegpt"] = Field(
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
