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
from typing import Any

import torch

from alignkit.config.base import config_hash, config_to_yaml
from alignkit.config.recipes import SFTConfig
from alignkit.config.training import TrainingProbeSection
from alignkit.data.collate import make_batch, trained_tokens
from alignkit.data.dataset import Example, load_sft_data
from alignkit.errors import AlignkitError
from alignkit.evaluation.metrics import repeated_ngram_loop
from alignkit.evaluation.probe_sets import load_grounded_items
from alignkit.evaluation.probes import run_grounded_probe, run_hello_probe
from alignkit.generation.local import LocalGenerator
from alignkit.io import atomic_write_text
from alignkit.losses.sft import chunked_nll_sum, shifted_targets
from alignkit.models.adapters import save_trained_model
from alignkit.models.forward import compile_decoder_layers, hidden_states, lm_head
from alignkit.models.loader import resolve_device
from alignkit.result import CommandResult, say
from alignkit.training.checkpoint import write_run_manifest
from alignkit.training.distributed import leaves_its_group, setup_distributed
from alignkit.training.loop import LoopResult, run_loop
from alignkit.training.parallel import gather_for_export
from alignkit.training.setup import lint_or_refuse, load_train_eval, prepare_model


class SFTObjective:
    """Token-level NLL on trained positions; normaliser = trained tokens."""

    def __init__(self, *, packed: bool, pad_id: int, chunk_size: int, device: torch.device) -> None:
        self.packed = packed
        self.pad_id = pad_id
        self.chunk_size = chunk_size
        self.device = device

    def normalizer(self, examples: Sequence[Example]) -> float:
        return float(trained_tokens(examples))

    def loss(
        self, model: torch.nn.Module, examples: Sequence[Example]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        batch = make_batch(examples, packed=self.packed, pad_id=self.pad_id).to(self.device)
        hidden = hidden_states(model, batch)
        predict_mask, next_ids = shifted_targets(batch.input_ids, batch.loss_mask)
        nll = chunked_nll_sum(
            hidden[predict_mask], next_ids[predict_mask], lm_head(model), chunk_size=self.chunk_size
        )
        return nll, {}


def training_probe(
    section: TrainingProbeSection, model: Any, tokenizer: Any
) -> Callable[[], dict[str, float]]:
    """The probes of ``section`` on the model being trained, as ``probe.figure`` -> value.

    Hello gives the sampled stop rate and the share of replies that end in a loop (the overfitting
    story: a model that stops ending its turn, then repeats one token); grounded gives the strict
    figures on the dev split. Generation runs in eval mode without gradients; train mode is restored.
    """
    generator = LocalGenerator(model, tokenizer, batch_size=section.batch_size)
    items = load_grounded_items(section.grounded_data)[: section.max_items] if section.grounded_data else []

    def run() -> dict[str, float]:
        was_training = model.training
        model.eval()
        figures: dict[str, float] = {}
        try:
            with torch.no_grad():
                if "hello" in section.probes:
                    hello = run_hello_probe(
                        generator, n_samples=section.hello_samples, max_new_tokens=section.max_new_tokens
                    )
                    figures["hello.sampled_stop_rate"] = float(hello.summary["sampled_stop_rate"])
                    figures["hello.greedy_stop_rate"] = float(hello.summary["greedy_stop_rate"])
                    loops = [bool(repeated_ngram_loop(row["text"].split())) for row in hello.rows]
                    figures["hello.loop_rate"] = sum(loops) / max(len(loops), 1)
                if items:
                    grounded = run_grounded_probe(generator, items, max_new_tokens=section.max_new_tokens)
                    for key in (
                        "idk_rate_unanswerable",
                        "accuracy_answerable",
                        "mixed_line_rate_answerable",
                        "false_idk_rate_answerable",
                    ):
                        figures[f"grounded.{key}"] = float(grounded.summary[key])
        finally:
            model.train(was_training)
        return figures

    return run


@leaves_its_group
def run_sft(cfg: SFTConfig, *, stop_after_step: int | None = None) -> LoopResult:
    """Runs SFT as configured; returns the loop result. Outputs go to ``cfg.out``."""

    if not cfg.data.train:
        raise AlignkitError("no training data: set data.train=PATH", field="data.train")
    torch.manual_seed(cfg.train.seed)
    dist = setup_distributed(resolve_device(cfg.device))
    output_dir = Path(cfg.out)
    loaded, model = prepare_model(cfg, dist)
    tokenizer = loaded.tokenizer
    lint_or_refuse(cfg, tokenizer, model.generation_config if hasattr(model, "generation_config") else None)
    train_examples, eval_examples, report = load_train_eval(
        cfg, tokenizer, dist, load_sft_data, unit="examples"
    )
    if dist.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(output_dir / "config.yaml", config_to_yaml(cfg))
    objective = SFTObjective(
        packed=cfg.train.packing,
        pad_id=tokenizer.pad_token_id or 0,
        chunk_size=cfg.train.loss_chunk_size,
        device=dist.device,
    )
    if cfg.train.compile:
        compile_decoder_layers(model)
    result = run_loop(
        model=model,
        objective=objective,
        train_examples=train_examples,
        eval_examples=eval_examples,
        cfg=cfg.train,
        output_dir=output_dir,
        config_hash=config_hash(cfg),
        resume=cfg.resume,
        dist=dist,
        description="sft",
        stop_after_step=stop_after_step,
        probe=training_probe(cfg.probe, model, tokenizer) if cfg.train.probe_every else None,
    )
    finished = stop_after_step is None or result.state.step >= stop_after_step
    exported = gather_for_export(model) if finished else None  # collective under FSDP: every rank gathers
    if dist.is_main and finished:
        final = output_dir / ("adapter" if cfg.finetune != "full" or cfg.adapter else "model")
        save_trained_model(model, tokenizer, final, state_dict=exported)
        write_run_manifest(
            output_dir,
            kind="sft",
            cfg=cfg,
            result=result,
            report=report,
            output=final,
            count_name="examples",
            count=len(train_examples),
        )
    return result


def sft_command(cfg: SFTConfig, progress: Callable[[str], None] | None = None) -> CommandResult:
    """``alignkit sft``: the run, and its final model or adapter as the output."""
    result = run_sft(cfg)
    final = "model" if cfg.finetune == "full" and not cfg.adapter else "adapter"
    return CommandResult(
        output=str(Path(cfg.out) / final),
        outputs={"model": cfg.model},
        show=say(
            f"sft done: {result.state.step} steps ({result.state.nonfinite_steps} skipped), "
            f"outputs in {cfg.out}"
        ),
    )
