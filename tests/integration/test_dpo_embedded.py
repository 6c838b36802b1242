"""A short DPO LoRA run on the embedded model (SmolLM2-135M-Instruct) generalises to held-out pairs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alignkit.config.base import load_config
from alignkit.recipes.dpo import DPOConfig, run_dpo

TOY = Path(__file__).resolve().parents[1] / "assets" / "prefs_toy.jsonl"


@pytest.mark.integration
def test_dpo_lora_raises_the_held_out_margin(tmp_path):
    lines = TOY.read_text().splitlines(keepends=True)
    train, held_out = tmp_path / "train.jsonl", tmp_path / "held_out.jsonl"
    train.write_text("".join(lines[:32]))
    held_out.write_text("".join(lines[32:]))  # 8 prompts the run never sees
    out = tmp_path / "run"
    cfg = load_config(
        DPOConfig,
        None,
        [
            "model=embedded",
            "device=cpu",
            f"data.train={train}",
            f"data.eval={held_out}",
            f"out={out}",
            "finetune=lora",
            "lora.r=8",
            "train.max_steps=6",
            "train.batch_size=4",
            "train.lr=1e-3",
            "train.schedule=constant",
            "train.eval_every=6",
            "beta=0.1",
        ],
    )
    run_dpo(cfg)
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train_lines = [m for m in metrics if m["kind"] == "train"]
    assert train_lines[0]["loss"] == pytest.approx(0.6931472, abs=1e-6)  # policy == reference at step 0
    held = [m for m in metrics if m["kind"] == "eval"][-1]
    # Before training the margin is exactly 0 (the reference is the starting model).
    assert held["eval_rewards/margin"] > 0.05
    assert held["eval_rewards/accuracy"] >= 0.75
    assert held["eval_loss"] < 0.69
