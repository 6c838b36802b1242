"""The quickstart pipeline, shortened (a few steps and samples per stage), end to end on the
embedded model: lint -> baseline probe -> SFT -> probe -> DPO -> probe -> report; a rerun skips all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from alignkit.cli import app

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.integration


def test_quickstart_ci_pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = yaml.safe_load((ROOT / "examples/quickstart/pipeline-ci.yaml").read_text())
    spec["runs_dir"] = str(tmp_path / "runs")
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(yaml.safe_dump(spec))
    monkeypatch.chdir(ROOT)  # data paths in the pipeline are relative to the repository root

    first = CliRunner().invoke(app, ["run", str(pipeline)])
    assert first.exit_code == 0, first.output
    root = tmp_path / "runs" / spec["name"]
    for stage in spec["stages"]:
        record = json.loads((root / stage["name"] / "stage.json").read_text())
        assert record["status"] == "complete", stage["name"]
    assert (root / "sft" / "adapter" / "adapter_config.json").is_file()
    assert (root / "dpo" / "adapter" / "adapter_config.json").is_file()
    summary = json.loads((root / "probe_dpo" / "probe" / "summary.json").read_text())
    assert {"hello", "grounded", "regurgitation", "repetition"} <= set(summary)
    html = (root / "report" / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 2
    assert "report.html" in first.output
    # The scorecard on the terminal: one row per report run that has a grounded or hello figure.
    assert "strict accuracy" in first.output and "mixed-line" in first.output
    for label in ("baseline, few-shot", "dpo, trained entities"):
        assert any(line.startswith(label + " ") for line in first.output.splitlines()), label

    again = CliRunner().invoke(app, ["run", str(pipeline)])
    assert again.exit_code == 0, again.output
    assert again.output.count("up to date, skipped") == len(spec["stages"])
