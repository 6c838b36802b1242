"""What the PPO and GRPO recipe tests share: prompts, configs, metrics, and the 1-vs-2-process check
(``rl_driver.py`` under torchrun, gloo on the CPU)."""

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

PROMPTS = [
    "What is the capital of France?",
    "Say hello.",
    "Name a color.",
    "How many legs does a cat have?",
    "Tell me a fact about water.",
    "What is 2 + 2?",
    "Give me a word that rhymes with cat.",
    "What day comes after Monday?",
]


REWARD = "alignkit.rewards.examples:short_and_stops"


def write_prompts(folder: Path) -> Path:
    path = folder / "prompts.jsonl"
    if not path.exists():
        lines = [json.dumps({"prompt": p}) for p in PROMPTS[:-1]]
        lines.append(json.dumps({"messages": [{"role": "user", "content": PROMPTS[-1]}]}))
        path.write_text("\n".join(lines) + "\n")
    return path


def rl_args(tmp_path: Path, out: str, *extra: str) -> list[str]:
    """A tiny, fast setup: 8-token replies at temperature 0.1, where brevity is easy to learn."""
    return [
        "model=tiny-random",
        "device=cpu",
        f"data.train={write_prompts(tmp_path)}",
        f"out={tmp_path / out}",
        "reward.kind=function",
        f"reward.function={REWARD}",
        "reward.kwargs={max_chars: 40}",
        "rollout.max_new_tokens=8",
        "rollout.temperature=0.1",
        "rollout.prompts_per_step=8",
        "train.batch_size=8",
        "lora.r=4",
        "resume=auto",
        *extra,
    ]


def metrics(out: Path, kind: str = "train") -> list[dict]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["kind"] == kind]


DRIVER = Path(__file__).parent / "rl_driver.py"


TORCHRUN = Path(sys.executable).parent / "torchrun"


needs_torchrun = pytest.mark.skipif(
    shutil.which("torchrun") is None and not TORCHRUN.exists(), reason="torchrun not found"
)


def run_rl_driver(kind: str, args: list[str], *, port: int | None = None) -> subprocess.CompletedProcess:
    """``tests/helpers/rl_driver.py`` in one process, or in two under torchrun when ``port`` is given."""
    launcher = [sys.executable] if port is None else [
        str(TORCHRUN), "--nproc_per_node", "2", "--master_port", str(port)
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]), "OMP_NUM_THREADS": "1"}
    command = [*launcher, str(DRIVER), kind, *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def check_two_processes_match_one(tmp_path: Path, kind: str, args: list[str], per_rank: list[str],
                                  single: list[str], *, port: int, compared: tuple[str, ...]) -> list[dict]:  # fmt: skip
    """Same global batch in 1 and 2 processes; the driver samples each prompt alone (see its docstring:
    the recipes' own sampling depends on the split), so everything after sampling must agree.
    Returns the 2-process run's train metrics."""
    one = run_rl_driver(kind, [*args, f"out={tmp_path / 'one'}", *single])
    assert one.returncode == 0, one.stderr[-3000:]
    two = run_rl_driver(kind, [*args, f"out={tmp_path / 'two'}", *per_rank], port=port)
    assert two.returncode == 0, two.stderr[-3000:]

    out = tmp_path / "two"
    assert (out / "run.json").is_file() and json.loads((out / "run.json").read_text())["steps"] == 2
    rank0 = load_file(str(out / "trainable-rank0.safetensors"))
    rank1 = load_file(str(out / "trainable-rank1.safetensors"))
    assert rank0.keys() == rank1.keys() and rank0
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name  # summed gradients: both ranks step alike
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if r["kind"] == "train"] == [1, 2]  # rank 0 writes, once

    rows_one, rows_two = metrics(tmp_path / "one"), metrics(out)
    for row_one, row_two in zip(rows_one, rows_two, strict=True):
        for key in compared:
            assert abs(row_one[key] - row_two[key]) < 1e-5, (row_two["step"], key, row_one[key], row_two[key])
    single_weights = load_file(str(tmp_path / "one" / "trainable-rank0.safetensors"))
    for name in rank0:
        torch.testing.assert_close(rank0[name], single_weights[name], atol=1e-5, rtol=0)
    return rows_two
