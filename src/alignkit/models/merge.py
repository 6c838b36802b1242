"""``alignkit merge``: LoRA adapters merged (or combined) into one full model folder."""

from __future__ import annotations

from collections.abc import Callable

from alignkit.config.commands import MergeConfig
from alignkit.errors import AlignkitError
from alignkit.io import atomic_folder
from alignkit.models.adapters import merge_adapters, save_trained_model
from alignkit.models.loader import load_from_fields
from alignkit.result import CommandResult, say


def merge_command(cfg: MergeConfig, progress: Callable[[str], None] | None = None) -> CommandResult:
    """``alignkit merge``: the base model plus ``cfg.adapters`` merged into one full model folder."""
    if not cfg.out:
        raise AlignkitError("expected an output folder: --out DIR", field="out")
    # The base alone: the adapters to merge are cfg.adapters.
    loaded = load_from_fields(cfg, spec=cfg.model, device="cpu")
    merged = merge_adapters(loaded.model, cfg.adapters, weights=cfg.weights or None, combination=cfg.combination)
    with atomic_folder(cfg.out, {"kind": "merged", "base": cfg.model, "adapters": cfg.adapters}) as tmp:
        save_trained_model(merged, loaded.tokenizer, tmp)
    return CommandResult(output=cfg.out, show=say(f"merged {len(cfg.adapters)} adapter(s) into {cfg.out}"))
