"""A real ``alignkit sft`` run, then the reruns issue 15 was about: same config, changed alpha, more steps."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from typer.testing import CliRunner

from alignkit.cli import app
from tests.helpers.data import write_data


def sft(*words: str):
    return CliRunner().invoke(app, ["sft", "model=tiny-random", "device=cpu", "lora.r=4", "data.train=d.jsonl",
                                    "train.batch_size=4", "out=out", *words])


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_rerunning_a_finished_run(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    old_umask = os.umask(0o022)
    try:
        write_data(tmp_path / "d.jsonl")
        first = sft("train.max_steps=2")
        assert first.exit_code == 0, first.output
        weights = Path("out/adapter/adapter_model.safetensors")
        assert stat.S_IMODE(weights.stat().st_mode) == 0o644
        assert stat.S_IMODE(next(Path("out/checkpoints").iterdir()).stat().st_mode) == 0o755
        before = files(Path("out"))

        again = sft("train.max_steps=2")
        assert again.exit_code == 0 and "already complete, nothing trained" in again.output
        assert files(Path("out")) == before, "nothing written"

        alpha = sft("train.max_steps=2", "lora.alpha=256")
        assert alpha.exit_code == 2
        assert "holds an alignkit sft run with lora.alpha=32.0, this one has lora.alpha=256.0" in alpha.stderr
        assert files(Path("out")) == before, "the adapter's alpha is not rewritten over weights trained with 32"

        longer = sft("train.max_steps=3")
        assert longer.exit_code == 0, longer.output
        assert "resumed from out/checkpoints/step-000002 at step 2" in longer.output
        assert json.loads(Path("out/run.json").read_text())["steps"] == 3
        assert json.loads(Path("out/run-folder.json").read_text())["status"] == "complete"
    finally:
        os.umask(old_umask)
