"""LoRA / QLoRA through PEFT, and exporting results that plain transformers/PEFT load."""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from alignkit.config.training import LoraSection
from alignkit.errors import ModelError
from alignkit.io import honour_umask


@contextlib.contextmanager
def peft_wrapping() -> Iterator[None]:
    """Silences the FutureWarning PEFT triggers when it wraps a model.

    PEFT reads transformers' deprecated ``is_gradient_checkpointing`` in ``PeftModel.__init__``: the
    warning is about PEFT's code, nothing a user of alignkit can change.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


def apply_lora(model: Any, lora: LoraSection) -> Any:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,  # type: ignore[arg-type]  # PEFT accepts floats
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        use_dora=lora.use_dora, use_rslora=lora.use_rslora, task_type="CAUSAL_LM", bias="none",
    )
    with peft_wrapping():
        return get_peft_model(model, config)


def check_qlora_available(device: torch.device) -> None:
    if device.type != "cuda":
        raise ModelError("QLoRA (4-bit NF4) needs CUDA and bitsandbytes; on CPU use finetune=lora",
                         field="finetune")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise ModelError("QLoRA needs bitsandbytes: pip install bitsandbytes", field="finetune") from None


def quantization_config() -> Any:
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16)


def save_trained_model(model: Any, tokenizer: Any, out: Path, *,
                       state_dict: dict[str, torch.Tensor] | None = None) -> None:
    """An adapter folder (PEFT) or a full safetensors model folder, with tokenizer and stop tokens.

    ``state_dict``: the weights to write when the model holds only shards of them (FSDP), as gathered by
    ``training.parallel.gather_for_export``; None writes the model's own weights.
    """
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True, state_dict=state_dict)
    tokenizer.save_pretrained(out)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.generation_config.save_pretrained(out)
    spec = getattr(base, "alignkit_spec", None)
    adapter_config = out / "adapter_config.json"
    if spec is not None and adapter_config.is_file():
        # The base as a spec alignkit loads from any folder (PEFT wrote the loader's temporary path, or nothing).
        recorded = json.loads(adapter_config.read_text(encoding="utf-8"))
        recorded["base_model_name_or_path"] = spec
        adapter_config.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    honour_umask(out)  # safetensors writes its weights 0600


@contextlib.contextmanager
def _adapter_fits(adapter: str) -> Iterator[None]:
    """PEFT's errors for an adapter trained on another base (shapes, missing modules) as one line."""
    try:
        yield
    except (RuntimeError, ValueError) as exc:
        lines = str(exc).splitlines()
        detail = next((line.strip() for line in lines if "size mismatch" in line), lines[0] if lines else "")
        if "size mismatch" not in detail and "not found in the base model" not in detail:
            raise
        raise ModelError(f"{adapter} was trained on another base model ({detail})", field="adapters") from None


def merge_adapters(base: Any, adapters: list[str], *, weights: list[float] | None = None,
                   combination: str = "linear") -> Any:
    """Applies one adapter, or combines several (weighted sum or concatenation) before merging.

    ``linear`` needs equal ranks (a weighted sum of the low-rank factors); ``cat`` stacks the factors
    (rank = sum of ranks), which equals applying the adapters' deltas one on top of the other, scaled.
    """
    from peft import PeftModel

    if not adapters:
        raise ModelError("expected at least one adapter folder", field="adapters")
    for adapter in adapters:
        if not (Path(adapter) / "adapter_config.json").is_file():
            raise ModelError(f"{adapter} is not a PEFT adapter folder (no adapter_config.json)", field="adapters")
    with peft_wrapping(), _adapter_fits(adapters[0]):
        model = PeftModel.from_pretrained(base, adapters[0], adapter_name="a0")
    if len(adapters) == 1:
        return model.merge_and_unload()
    for index, adapter in enumerate(adapters[1:], start=1):
        with _adapter_fits(adapter):
            model.load_adapter(adapter, adapter_name=f"a{index}")
    names = [f"a{i}" for i in range(len(adapters))]
    weights = weights or [1.0] * len(adapters)
    if len(weights) != len(adapters):
        raise ModelError(f"{len(weights)} weights for {len(adapters)} adapters", field="weights")
    try:
        model.add_weighted_adapter(names, weights, adapter_name="combined", combination_type=combination)
    except ValueError as exc:
        raise ModelError(f"cannot combine these adapters with {combination!r}: {exc}", field="combination") from None
    model.set_adapter("combined")
    for name in names:
        model.delete_adapter(name)
    return model.merge_and_unload()

