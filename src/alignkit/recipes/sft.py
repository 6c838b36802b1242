"""Supervised fine-tuning, read top to bottom.

1. Load the model (full, LoRA or QLoRA) and the data, formatted with the model's own chat template:
   assistant-only loss mask with the end-of-turn token inside it.
2. Refuse data that fails lint's blocking checks (unless ``allow_lint_failures``).
3. Train with the shared loop: padding-free packing, loss = sum of token NLL over trained positions /
   trained tokens of the global batch, computed in chunks on trained positions only.
4. Save the adapter (PEFT folder) or the full model (safetensors), tokenizer, generation config
   stopping on end-of-turn, the resolved config and a run manifest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch

from alignkit.config.base import config_hash, config_to_yaml
from alignkit.config.common import DataConfig
from alignkit.config.recipes import SFTConfig
from alignkit.data.collate import make_batch, trained_tokens
from alignkit.data.dataset import BuildReport, Example, load_sft_data
from alignkit.data.lint import lint_dataset
from alignkit.errors import AlignkitError, DataError
from alignkit.io import atomic_write_text
from alignkit.losses.sft import chunked_nll_sum, shifted_targets
from alignkit.models.adapters import apply_lora, check_qlora_available, save_trained_model
from alignkit.models.attention import use_packed_attention
from alignkit.models.forward import compile_decoder_layers, hidden_states, lm_head
from alignkit.models.loader import load_from_fields, load_model_4bit, resolve_device
from alignkit.result import CommandResult, say
from alignkit.training.checkpoint import write_run_manifest
from alignkit.training.loop import Distributed, LoopResult, leaves_its_group, run_loop, setup_distributed
from alignkit.training.parallel import gather_for_export


class SFTObjective:
    """Token-level NLL on trained positions; normaliser = trained tokens."""

    def __init__(self, *, packed: bool, pad_id: int, chunk_size: int, device: torch.device) -> None:
        self.packed = packed
        self.pad_id = pad_id
        self.chunk_size = chunk_size
        self.device = device

    def normalizer(self, examples: Sequence[Example]) -> float:
        return float(trained_tokens(examples))

    def loss(self, model: torch.nn.Module, examples: Sequence[Example]) -> tuple[torch.Tensor, dict[str, float]]:
        batch = make_batch(examples, packed=self.packed, pad_id=self.pad_id).to(self.device)
        hidden = hidden_states(model, batch)
        predict_mask, next_ids = shifted_targets(batch.input_ids, batch.loss_mask)
        nll = chunked_nll_sum(hidden[predict_mask], next_ids[predict_mask], lm_head(model),
                              chunk_size=self.chunk_size)
        return nll, {}


ExampleT = TypeVar("ExampleT")


def _split_eval(
    examples: list[ExampleT], fraction: float, seed: int
) -> tuple[list[ExampleT], list[ExampleT]]:
    if fraction <= 0:
        return examples, []
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(examples), generator=generator).tolist()
    count = max(1, int(round(fraction * len(examples))))
    held = set(order[:count])
    return [e for i, e in enumerate(examples) if i not in held], [e for i, e in enumerate(examples) if i in held]


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
        train, held_out = _split_eval(train, cfg.data.eval_fraction, cfg.train.seed)
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


@leaves_its_group
def run_sft(cfg: SFTConfig, *, stop_after_step: int | None = None) -> LoopResult:
    """Runs SFT as configured; returns the loop result. Outputs go to ``cfg.output_dir``."""

    if not cfg.data.train:
        raise AlignkitError("no training data: set data.train=PATH", field="data.train")
    torch.manual_seed(cfg.train.seed)
    dist = setup_distributed(resolve_device(cfg.device))
    output_dir = Path(cfg.output_dir)
    loaded, model = prepare_model(cfg, dist)
    tokenizer = loaded.tokenizer
    lint_or_refuse(cfg, tokenizer, model.generation_config if hasattr(model, "generation_config") else None)
    train_examples, eval_examples, report = load_train_eval(cfg, tokenizer, dist, load_sft_data, unit="examples")
    if dist.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(output_dir / "config.yaml", config_to_yaml(cfg))
    objective = SFTObjective(packed=cfg.train.packing, pad_id=tokenizer.pad_token_id or 0,
                             chunk_size=cfg.train.loss_chunk_size, device=dist.device)
    if cfg.train.compile:
        compile_decoder_layers(model)
    result = run_loop(model=model, objective=objective, train_examples=train_examples, eval_examples=eval_examples,
                      cfg=cfg.train, output_dir=output_dir, config_hash=config_hash(cfg), resume=cfg.resume,
                      dist=dist, description="sft", stop_after_step=stop_after_step)
    finished = stop_after_step is None or result.state.step >= stop_after_step
    exported = gather_for_export(model) if finished else None  # collective under FSDP: every rank gathers
    if dist.is_main and finished:
        final = output_dir / ("adapter" if cfg.finetune != "full" or cfg.adapter else "model")
        save_trained_model(model, tokenizer, final, state_dict=exported)
        write_run_manifest(output_dir, kind="sft", cfg=cfg, result=result, report=report, output=final,
                           count_name="examples", count=len(train_examples))
    return result


def sft_command(cfg: SFTConfig, progress: Callable[[str], None] | None = None) -> CommandResult:
    """``alignkit sft``: the run, and its final model or adapter as the output."""
    result = run_sft(cfg)
    final = "model" if cfg.finetune == "full" and not cfg.adapter else "adapter"
    return CommandResult(
        output=str(Path(cfg.output_dir) / final), outputs={"model": cfg.model},
        show=say(f"sft done: {result.state.step} steps ({result.state.nonfinite_steps} skipped), "
                 f"outputs in {cfg.output_dir}"),
    )
