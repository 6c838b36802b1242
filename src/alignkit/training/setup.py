"""What the SFT, DPO and reward-model recipes set up the same way: the model made trainable (full, LoRA,
QLoRA), the training and held-out data, and the refusal of data that lint blocks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch

from alignkit.config.common import DataConfig
from alignkit.data.dataset import BuildReport
from alignkit.data.lint import lint_dataset
from alignkit.data.split import split_held_out
from alignkit.errors import AlignkitError, DataError
from alignkit.models.adapters import apply_lora, check_qlora_available
from alignkit.models.attention import use_packed_attention
from alignkit.models.loader import load_from_fields, load_model_4bit
from alignkit.training.distributed import Distributed

ExampleT = TypeVar("ExampleT")


def prepare_model(cfg: Any, dist: Distributed) -> Any:
    """Loads the model and makes the right parameters trainable (full, LoRA, QLoRA)."""

    if cfg.finetune == "qlora":
        from peft import prepare_model_for_kbit_training

        check_qlora_available(dist.device)
        if cfg.adapter is not None:
            raise AlignkitError("finetune=qlora starts a new adapter; continuing adapter= is for lora", field="adapter")
        loaded = load_model_4bit(cfg.model, device=dist.device, trust_remote_code=cfg.trust_remote_code,
                                 seed=cfg.train.seed)
        # Casts norms to fp32 and enables input grads, as 4-bit training needs.
        model = prepare_model_for_kbit_training(
            loaded.model, use_gradient_checkpointing=cfg.train.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
        torch.manual_seed(cfg.train.seed)
        model = apply_lora(model, cfg.lora)
        _packed_attention_if_packing(cfg, model)
        return loaded, model
    loaded = load_from_fields(cfg, device=str(dist.device), seed=cfg.train.seed,
                              trainable_adapter=cfg.adapter is not None)
    model = loaded.model
    if cfg.train.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if cfg.finetune == "lora" and cfg.adapter is None:
        torch.manual_seed(cfg.train.seed)
        model = apply_lora(model, cfg.lora)
        if cfg.train.gradient_checkpointing:
            model.enable_input_require_grads()
    _packed_attention_if_packing(cfg, model)
    return loaded, model


def _packed_attention_if_packing(cfg: Any, model: Any) -> None:
    """Packed rows get per-sequence attention kernels instead of a dense block-diagonal mask."""

    if cfg.train.packing:
        use_packed_attention(model)


def load_train_eval(
    cfg: Any,
    tokenizer: Any,
    dist: Distributed,
    load: Callable[[str, Any, DataConfig], tuple[list[ExampleT], BuildReport]],
    *,
    unit: str,
) -> tuple[list[ExampleT], list[ExampleT], BuildReport]:
    """(train, eval, train's build report), read by ``load`` (``load_sft_data``, ``load_preference_data``).

    Eval is ``data.eval``, else a seeded ``data.eval_fraction`` of train held out. Refuses fewer
    training ``unit`` (examples, pairs) than processes: a process with none would hang the others.
    """
    train, report = load(cfg.data.train, tokenizer, cfg.data)
    if cfg.data.eval:
        held_out, _ = load(cfg.data.eval, tokenizer, cfg.data)
    else:
        train, held_out = split_held_out(train, cfg.data.eval_fraction, cfg.train.seed)
    if len(train) < dist.world_size:
        raise DataError(
            f"{len(train)} training {unit} for {dist.world_size} processes", source=cfg.data.train
        )
    return train, held_out, report


def lint_or_refuse(cfg: Any, tokenizer: Any, generation_config: Any) -> None:
    if cfg.allow_lint_failures or cfg.data.train is None:
        return
    result = lint_dataset(cfg.data.train, tokenizer, cfg.data, generation_config=generation_config)
    if result.blocking:
        raise DataError(f"lint found blocking problems: {result.problems[0]} (fix the data, or set "
                        "allow_lint_failures=true)", source=cfg.data.train, field="data")
