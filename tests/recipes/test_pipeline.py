"""Pipeline runner: skip, invalidate, resume after a kill, --from/--only, broken files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from alignkit.cli import app
from tests.helpers.data import write_data

ROOT = Path(__file__).parents[2]


def write_pipeline(tmp_path: Path, *, steps: int = 4, lr: float = 1e-3, extra_stage: bool = True) -> Path:
    data = write_data(tmp_path / "data.jsonl")
    stages = [
        {"name": "lint", "config": {"model": "tiny-random", "paths": [str(data)]}},
        {"name": "sft", "config": {"model": "tiny-random", "device": "cpu", "finetune": "lora", "lora": {"r": 4},
                                   "data": {"train": str(data)},
                                   "train": {"max_steps": steps, "lr": lr, "batch_size": 2, "save_every": 2}}},
    ]
    if extra_stage:
        stages.append({"name": "sft2", "command": "sft",
                       "config": {"model": "tiny-random", "device": "cpu", "adapter": "${sft.output}",
                                  "data": {"train": str(data)}, "train": {"max_steps": 2, "batch_size": 2}}})
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump({"name": "p", "runs_dir": str(tmp_path / "runs"), "stages": stages}))
    return path


def run(*args: str):
    result = CliRunner().invoke(app, ["run", *args])
    return result


def stage(tmp_path: Path, name: str) -> dict:
    return json.loads((tmp_path / "runs" / "p" / name / "stage.json").read_text())


def test_skip_invalidate_from_only(tmp_path: Path) -> None:
    pipeline = write_pipeline(tmp_path)
    first = run(str(pipeline))
    assert first.exit_code == 0, first.output
    assert stage(tmp_path, "sft2")["status"] == "complete"
    assert Path(stage(tmp_path, "sft")["outputs"]["output"]).name == "adapter"
    again = run(str(pipeline))
    assert again.exit_code == 0
    assert again.output.count("up to date, skipped") == 3

    # A changed config value reruns that stage and everything after it, not what came before.
    changed = run(str(pipeline), "sft.train.lr=0.002")
    assert changed.exit_code == 0, changed.output
    assert "[lint] up to date" in changed.output
    assert "[sft] running" in changed.output and "[sft2] running" in changed.output

    only = run(str(pipeline), "--only", "sft2", "sft.train.lr=0.002")
    assert only.exit_code == 0 and "[sft2] running" in only.output and "[sft] running" not in only.output
    frm = run(str(pipeline), "--from", "sft", "sft.train.lr=0.002")
    assert frm.exit_code == 0 and "[sft] running" in frm.output and "[sft2] running" in frm.output
    assert "[lint] running" not in frm.output


def test_interrupted_stage_resumes(tmp_path: Path) -> None:
    pipeline = write_pipeline(tmp_path, steps=6, extra_stage=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KILL_DURING_CHECKPOINT_STEP": "4"}
    driver = str(ROOT / "tests" / "helpers" / "pipeline_driver.py")
    killed = subprocess.run([sys.executable, driver, str(pipeline)], env=env, capture_output=True, text=True,
                            timeout=300)
    assert killed.returncode == -9
    assert stage(tmp_path, "sft")["status"] == "running"
    env.pop("KILL_DURING_CHECKPOINT_STEP")
    done = subprocess.run([sys.executable, driver, str(pipeline)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "[sft] resuming" in done.stdout and "resumed from" in done.stdout and "step-000002" in done.stdout
    assert stage(tmp_path, "sft")["status"] == "complete"


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ([{"name": "bogus", "config": {}}], "unknown stage command 'bogus'"),
        ([{"name": "sft", "config": {"adapter": "${nothere.output}"}}], "unknown stage 'nothere'"),
        ([{"name": "sft", "config": {"adapter": "${sft2.output}"}},
          {"name": "sft2", "command": "sft", "config": {"adapter": "${sft.output}"}}], "cycle"),
        ([{"name": "sft", "config": {"adapter": "${sft.output}"}}], "cycle"),
        ([], "non-empty list of stages"),
    ],
)
def test_broken_pipeline_gives_one_line_error(tmp_path: Path, stages, message) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "bad", "stages": stages}))
    result = run(str(path))
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}") and message in lines[0], result.output


def test_a_pipeline_ends_with_the_scorecard_on_the_terminal(tmp_path: Path) -> None:
    grounded = tmp_path / "grounded.jsonl"
    items = [
        {"id": "a", "context": "- The Orla kettle holds 1.7 litres.", "question": "How much does it hold?",
         "answerable": True, "answers": ["1.7 litres"]},
        {"id": "u", "context": "- The Orla kettle holds 1.7 litres.", "question": "What does it cost?",
         "answerable": False},
    ]
    grounded.write_text("".join(json.dumps(item) + "\n" for item in items))
    probe = {
        "model": "tiny-random",
        "device": "cpu",
        "probes": ["hello", "grounded"],
        "grounded_data": str(grounded),
        "grounded": {"max_new_tokens": 4},
        "hello": {"n_samples": 1, "max_new_tokens": 4, "prompts": ["hello"]},
    }
    stages = [
        # tiny-random fails the probes' thresholds: expected here, so not counted.
        {"name": "baseline", "command": "probe", "config": probe, "allow_fail": True},
        {"name": "report", "config": {"runs": [{"label": "baseline", "probe": "${baseline.dir}"}]}},
    ]
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump({"name": "p", "runs_dir": str(tmp_path / "runs"), "stages": stages}))
    result = run(str(path))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("run ") and "strict accuracy" in line)
    assert lines[header + 2].split()[0] == "baseline"
    # Five figures, each a two-decimal share (tiny-random's values are whatever they are).
    assert all(re.fullmatch(r"\d\.\d\d", cell) for cell in lines[header + 2].split()[1:])
    assert str(tmp_path / "runs" / "p" / "report" / "report.html") in result.output
