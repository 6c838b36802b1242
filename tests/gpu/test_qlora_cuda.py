"""QLoRA (4-bit NF4 base + LoRA) on CUDA: trains, keeps the base frozen, saves a PEFT adapter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from alignkit.config.base import load_config
from alignkit.recipes.sft import SFTConfig, run_sft
from tests.helpers.data import write_data

pytestmark = pytest.mark.gpu


def test_qlora_sft_trains_adapter(tmp_path: Path) -> None:
    pytest.importorskip("bitsandbytes")
    assert torch.cuda.is_available()
    data = write_data(tmp_path / "data.jsonl")
    cfg = load_config(SFTConfig, None, [
        "model=tiny-random", f"data.train={data}", f"out={tmp_path / 'out'}", "finetune=qlora",
        "lora.r=8", "train.max_steps=30", "train.batch_size=8", "train.lr=5e-3", "train.schedule=constant",
    ])
    run_sft(cfg)
    lines = [json.loads(x) for x in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    losses = [x["loss"] for x in lines if x["kind"] == "train"]
    assert losses[-1] < losses[0] - 0.5
    assert (tmp_path / "out" / "adapter" / "adapter_config.json").is_file()
