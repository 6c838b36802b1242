"""Resume after SIGKILL is bit-exact; half-written checkpoints are ignored; corrupt ones refused;
two gloo processes match one process with accumulation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers.data import write_data

DRIVER = Path(__file__).parents[1] / "helpers" / "sft_driver.py"
ROOT = Path(__file__).parents[2]


def run_driver(args: list[str], env: dict[str, str] | None = None, launcher: list[str] | None = None):
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    command = [*(launcher or [sys.executable]), str(DRIVER), *args]
    return subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=300)


def base_args(tmp_path: Path, out: str) -> list[str]:
    data = write_data(tmp_path / "data.jsonl")
    return ["model=tiny-random", f"data.train={data}", f"out={tmp_path / out}", "finetune=lora", "lora.r=4",
            "lora.dropout=0.1", "train.lr=1e-2", "train.batch_size=2", "train.max_steps=6", "train.save_every=3",
            "device=cpu"]


def last_weights(out: Path) -> dict[str, torch.Tensor]:
    ckpts = sorted((out / "checkpoints").glob("step-*"))
    return load_file(str(ckpts[-1] / "trainable.safetensors"))


def assert_same_last_weights(one: Path, other: Path) -> None:
    """The last checkpoints of two runs hold bit-identical trainable weights."""
    a, b = last_weights(one), last_weights(other)
    assert a.keys() == b.keys() and a
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path: Path) -> None:
    straight = run_driver(base_args(tmp_path, "straight"))
    assert straight.returncode == 0, straight.stderr[-2000:]

    killed = run_driver(base_args(tmp_path, "resumed"), env={"KILL_DURING_CHECKPOINT_STEP": "6"})
    assert killed.returncode == -9
    out = tmp_path / "resumed"
    assert [p.name for p in sorted((out / "checkpoints").glob("step-*"))] == ["step-000003"]
    assert any(p.name.startswith(".step-000006.tmp") for p in (out / "checkpoints").iterdir())  # half-written
    assert not (out / "run.json").exists()

    resumed = run_driver(base_args(tmp_path, "resumed"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stdout and "step-000003" in resumed.stdout
    assert_same_last_weights(tmp_path / "straight", out)
    losses = [json.loads(x)["loss"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    straight_losses = [json.loads(x)["loss"] for x in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert losses == straight_losses


def test_corrupt_checkpoint_is_refused(tmp_path: Path) -> None:
    args = base_args(tmp_path, "run")
    assert run_driver([*args, "train.max_steps=3"]).returncode == 0
    ckpt = tmp_path / "run" / "checkpoints" / "step-000003"
    weights = ckpt / "trainable.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-5] ^= 0x01
    weights.write_bytes(bytes(blob))
    from alignkit.config.base import load_config
    from alignkit.errors import CheckpointError
    from alignkit.recipes.sft import SFTConfig, run_sft

    with pytest.raises(CheckpointError, match="sha256"):
        run_sft(load_config(SFTConfig, None, args))


@pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
                    reason="torchrun not found")
def test_two_processes_match_one_process_with_accumulation(tmp_path: Path) -> None:
    torchrun = str(Path(sys.executable).parent / "torchrun")
    common = [a for a in base_args(tmp_path, "x") if not a.startswith(("out=", "lora.dropout"))]
    single = run_driver([*common, f"out={tmp_path / 'one'}", "train.grad_accum=2"])
    assert single.returncode == 0, single.stderr[-2000:]
    double = run_driver([*common, f"out={tmp_path / 'two'}", "train.grad_accum=1"],
                        env={"OMP_NUM_THREADS": "1"},
                        launcher=[torchrun, "--nproc_per_node", "2", "--master_port", "29533"])
    assert double.returncode == 0, double.stderr[-3000:]

    def losses(out: str) -> list[float]:
        lines = (tmp_path / out / "metrics.jsonl").read_text().splitlines()
        return [json.loads(x)["loss"] for x in lines if json.loads(x)["kind"] == "train"]

    one, two = losses("one"), losses("two")
    assert len(one) == len(two) == 6
    for x, y in zip(one, two, strict=True):
        assert abs(x - y) < 1e-5
