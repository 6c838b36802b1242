"""The classic-failure example, shortened: lint refuses raw text without EOS, every command runs.

Runs ``examples/classic_failure/run.sh`` with two LoRA steps per run and tiny probe settings, so it
checks the plumbing (lint exit code and message, two trainings, two probe folders, one report with
both runs), not the failure itself: that needs the full example (see its README for the figures).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "classic_failure" / "run.sh"
PROBE_ARGS = (
    "hello.n_samples=1 hello.max_new_tokens=12 hello.prompts=[hello] "
    "regurgitation.max_prompts=2 regurgitation.max_new_tokens=12 thresholds.regurgitation_min_span=20"
)


def test_the_example_runs_end_to_end(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "OUT": str(tmp_path / "runs"),
        "STEPS": "2",
        "PROBE_ARGS": PROBE_ARGS,
        "ALIGNKIT": str(Path(sys.executable).parent / "alignkit"),
        "PYTHON": sys.executable,
    }
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = tmp_path / "runs"

    lint = (runs / "lint_raw.txt").read_text()
    assert "end-of-turn token '<|im_end|>'" in lint and "raw-text mode with add_eos=false" in lint
    assert "blocking problems found" in lint
    assert "ok" in (runs / "lint_chat.txt").read_text()

    for name in ("raw", "chat"):
        assert (runs / name / "adapter" / "adapter_config.json").is_file()
        assert len((runs / name / "metrics.jsonl").read_text().splitlines()) >= 2
        summary = json.loads((runs / name / "probe" / "summary.json").read_text())
        assert list(summary) == ["hello", "regurgitation", "repetition"]
        assert summary["regurgitation"]["train_docs"] == 80  # 40 replies + 40 conversations
    page = (runs / "report.html").read_text()
    for label in ("raw-text-no-eos", "chat-template"):
        assert f'data-plot="loss:{label}"' in page
    assert 'data-plot="probes"' in page
    assert "probe raw exit code" in done.stdout and "probe chat exit code" in done.stdout
