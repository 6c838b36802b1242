"""A tiny-random SFT config and the losses a run logged, shared by the SFT recipe tests."""

from __future__ import annotations

import json
from pathlib import Path

from alignkit.config.base import load_config
from alignkit.recipes.sft import SFTConfig
from tests.helpers.data import write_data


def sft_config(tmp_path: Path, *overrides: str) -> SFTConfig:
    data = write_data(tmp_path / "data.jsonl")
    base = [
        "model=tiny-random", f"data.train={data}", f"out={tmp_path / 'out'}", "finetune=full",
        "train.lr=1e-2", "train.schedule=constant", "train.batch_size=4", "train.max_steps=3",
        "device=cpu",
    ]
    return load_config(SFTConfig, None, [*base, *overrides])


def losses(cfg: SFTConfig) -> list[float]:
    lines = (Path(cfg.out) / "metrics.jsonl").read_text().splitlines()
    return [json.loads(x)["loss"] for x in lines if json.loads(x)["kind"] == "train"]
