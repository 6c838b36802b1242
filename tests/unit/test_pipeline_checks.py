"""``alignkit run``: everything is checked before a stage runs, nothing finished is deleted early, failures
are not reported as success. Stage commands are stand-ins (the real runs are in tests/recipes/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from alignkit.cli import app
from alignkit.commands import Command
from alignkit.errors import AlignkitError
from alignkit.pipeline import check_pipeline, load_pipeline
from alignkit.result import CommandResult

ROOT = Path(__file__).resolve().parents[2]


def _is_pipeline(path: Path) -> bool:
    spec = yaml.safe_load(path.read_text())
    return isinstance(spec, dict) and "stages" in spec


class Commands:
    """Stand-in run functions by command name: they write a file into the output, and record each call."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.probe_failures: list[str] = []
        self.fail_sft = False
        self.seen_aside: list[bool] = []

    def __call__(self, command: Command) -> Any:
        if command.name not in ("sft", "probe"):
            return REAL_RUN_FUNCTION(command)

        def run(cfg: Any, progress: Any) -> CommandResult:
            self.calls.append(command.name)
            if command.name == "sft":
                out = Path(cfg.out)
                self.seen_aside.append((out.parent / ".sft.previous" / "adapter" / "weights").is_file())
                if self.fail_sft:
                    raise RuntimeError("training blew up")
                (out / "adapter").mkdir(parents=True, exist_ok=True)
                (out / "adapter" / "weights").write_text(f"lr={cfg.train.lr}")
                return CommandResult(output=str(out / "adapter"))
            out = Path(cfg.out)
            out.mkdir(parents=True, exist_ok=True)
            failures = self.probe_failures
            return CommandResult(output=str(out), code=1 if failures else 0, problems=list(failures))

        return run


REAL_RUN_FUNCTION = Command.run_function


@pytest.fixture()
def commands(monkeypatch, tmp_path: Path) -> Commands:
    monkeypatch.chdir(tmp_path)
    fake = Commands()
    monkeypatch.setattr(Command, "run_function", lambda self: fake(self))
    Path("d.jsonl").write_text('{"prompt": "a", "completion": "b"}\n')
    return fake


PIPELINE = """\
name: p
runs_dir: runs
stages:
  - name: sft
    config:
      data: {train: d.jsonl}
      train: {lr: 0.001}
  - name: probe
    GATE
    config:
      adapter: ${sft.output}
      probes: [hello]
  - name: after
    command: probe
    config:
      adapter: ${sft.output}
"""


def write(text: str = PIPELINE, gate: bool = False) -> Path:
    path = Path("pipe.yaml")
    path.write_text(text.replace("    GATE\n", "    gate: true\n" if gate else ""))
    return path


def run(*args: str):
    return CliRunner().invoke(app, ["run", *args])


def one_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    return lines[0]


def test_a_typo_in_a_later_stage_is_found_before_any_stage_runs(commands) -> None:
    path = write(PIPELINE.replace("probes: [hello]", "probes: [hello]\n      max_new_token: 5"))
    line = one_error(run(str(path)))
    assert line.startswith("error: pipe.yaml:12: probe.max_new_token: unknown key (did you mean"), line
    assert commands.calls == [] and not Path("runs").exists()


def test_a_typo_on_the_command_line_deletes_nothing(commands) -> None:
    path = write()
    assert run(str(path)).exit_code == 0
    before = Path("runs/p/sft/adapter/weights").read_text()
    calls = len(commands.calls)
    line = one_error(run(str(path), "sft.train.max_step=1"))
    assert "<command line>: sft.train.max_step: unknown key (did you mean 'train.max_steps'?)" in line
    assert len(commands.calls) == calls and Path("runs/p/sft/adapter/weights").read_text() == before


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("${sft.adapter}", "pipe.yaml:10: probe.adapter: unknown reference ${sft.adapter}: expected "
                           "${<stage>.output} or ${<stage>.dir}"),
        ("${sft.output", "unknown reference ${sft.output:"),
        ("${nothere.output}", "pipe.yaml:10: probe.adapter: reference to unknown stage 'nothere'"),
    ],
)
def test_every_reference_is_checked_first(commands, reference, expected) -> None:
    path = write(PIPELINE.replace("adapter: ${sft.output}\n      probes", f"adapter: {reference}\n      probes"))
    line = one_error(run(str(path)))
    assert expected in line, line
    assert commands.calls == []


def test_a_rerun_keeps_the_finished_stage_aside_until_it_completes(commands) -> None:
    path = write()
    assert run(str(path)).exit_code == 0
    commands.fail_sft = True
    failed = run(str(path), "sft.train.lr=0.5")
    assert failed.exit_code == 1 and isinstance(failed.exception, RuntimeError)
    assert commands.seen_aside[-1], "the finished stage was moved aside, not deleted"
    assert Path("runs/p/.sft.previous/adapter/weights").read_text() == "lr=0.001"
    stage = json.loads(Path("runs/p/sft/stage.json").read_text())
    assert stage["status"] == "failed" and "training blew up" in stage["error"]
    commands.fail_sft = False
    assert run(str(path), "sft.train.lr=0.5").exit_code == 0
    assert not Path("runs/p/.sft.previous").exists(), "deleted once the rerun completed"
    assert Path("runs/p/sft/adapter/weights").read_text() == "lr=0.5"


def test_dry_run_says_what_would_run_and_why_and_runs_nothing(commands) -> None:
    path = write()
    result = run(str(path), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "[sft] would run (sft): has not run" in result.output
    assert commands.calls == [] and not Path("runs").exists()
    assert run(str(path)).exit_code == 0
    calls = len(commands.calls)
    result = run(str(path), "--dry-run", "sft.train.lr=0.5")
    assert "[sft] would run (sft): its config, inputs or an upstream stage changed" in result.output
    assert "[probe] would run (probe): its config, inputs or an upstream stage changed" in result.output
    unchanged = run(str(path), "--dry-run")
    assert "[sft] would skip (up to date)" in unchanged.output and "[after] would skip" in unchanged.output
    assert len(commands.calls) == calls


def test_a_failing_probe_prints_why_and_the_pipeline_exits_1(commands) -> None:
    commands.probe_failures = ["hello: stop rate 0.40 < 0.90"]
    result = run(str(write()))
    assert result.exit_code == 1, result.output
    assert "[probe] FAIL: hello: stop rate 0.40 < 0.90" in result.output
    assert "failing stages: probe, after" in result.output and "complete" not in result.output
    assert commands.calls == ["sft", "probe", "probe"], "without a gate the later stages run"
    again = run(str(write()))
    assert again.exit_code == 1 and "[probe] FAIL" in again.output, "a skipped failing stage still fails the run"


def test_a_gate_stops_the_pipeline(commands) -> None:
    commands.probe_failures = ["hello: stop rate 0.40 < 0.90"]
    result = run(str(write(gate=True)))
    assert result.exit_code == 1
    assert "[probe] gate: the pipeline stops here" in result.output
    assert "stopped at gate 'probe'" in result.output
    assert commands.calls == ["sft", "probe"] and not Path("runs/p/after").exists()


def test_gate_must_be_a_boolean(commands) -> None:
    path = write(PIPELINE.replace("    GATE\n", "    gate: sometimes\n"))
    assert "pipe.yaml:9: probe.gate: expected true or false, got 'sometimes'" in one_error(run(str(path)))


def test_prefs_writing_no_pairs_is_not_success(commands, monkeypatch) -> None:
    from alignkit.synth import prefs

    monkeypatch.setattr(Command, "run_function",
                        lambda self: prefs.prefs_command if self.name == "prefs" else REAL_RUN_FUNCTION(self))
    monkeypatch.setattr(prefs, "run_prefs", lambda cfg: prefs.PrefsReport(prompts=3, ties=3))
    result = CliRunner().invoke(app, ["prefs", "out=p.jsonl"])
    assert result.exit_code == 1 and "wrote 0 pairs from 3 prompts" in result.output
    path = Path("prefs.yaml")
    path.write_text(yaml.safe_dump({"name": "q", "stages": [{"name": "prefs", "config": {}}]}))
    line = one_error(run(str(path)))
    assert "prefs wrote no preference pairs: wrote 0 pairs from 3 prompts" in line
    assert json.loads(Path("runs/q/prefs/stage.json").read_text())["status"] == "failed"


def test_allow_fail_prints_the_failure_and_does_not_count_it(commands) -> None:
    commands.probe_failures = ["hello: stop rate 0.40 < 0.90"]
    path = write(PIPELINE.replace("    GATE\n", "    allow_fail: true\n").replace(
        "  - name: after\n    command: probe\n    config:\n      adapter: ${sft.output}\n", ""))
    result = run(str(path))
    assert result.exit_code == 0, result.output
    assert "[probe] FAIL: hello: stop rate 0.40 < 0.90" in result.output
    assert "[probe] allow_fail: a failure expected here, not counted" in result.output
    both = write(PIPELINE.replace("    GATE\n", "    gate: true\n    allow_fail: true\n"))
    assert "set one" in one_error(run(str(both)))


def test_a_long_text_value_is_not_taken_for_a_path(commands) -> None:
    """A stage's instruction longer than a file name may be (here 400 characters) is text, not a path."""
    instruction = "Answer only from the facts below; " * 12
    path = write(PIPELINE.replace("probes: [hello]", f"probes: [grounded]\n      grounded: {{instruction: '{instruction}'}}"))
    result = run(str(path))
    assert result.exit_code == 0, result.output
    assert commands.calls == ["sft", "probe", "probe"]
    assert "[probe] would skip (up to date)" in run(str(path), "--dry-run").output


@pytest.mark.parametrize(
    "path", sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples").rglob("*.yaml") if _is_pipeline(p))
)
def test_every_example_pipeline_passes_the_checks_a_run_starts_with(path: str, monkeypatch: Any) -> None:
    # The example pipelines are what users copy: a stale key or stage reference in one fails here, not
    # fifteen minutes into someone's run. Paths in them are relative to the repository root.
    monkeypatch.chdir(ROOT)
    pipeline = load_pipeline(path)
    assert pipeline.stages, f"{path}: no stages"
    try:
        check_pipeline(pipeline)
    except AlignkitError as error:
        pytest.fail(f"{path}: {error.one_line()}")


def test_the_example_check_fails_on_a_stale_key(monkeypatch: Any) -> None:
    # The check above can fail: the quickstart with one misspelt key is refused, naming the stage's key.
    monkeypatch.chdir(ROOT)
    with pytest.raises(AlignkitError, match=r"sft\.train\.max_step"):
        check_pipeline(load_pipeline("examples/quickstart/pipeline.yaml", ["sft.train.max_step=1"]))


# PIPELINE's sft stage, then a probe that names no ${sft.output}
AFTER = PIPELINE[: PIPELINE.index("  - name: probe")] + """\
  - name: probe
    AFTER
    config:
      probes: [hello]
"""


def test_after_reruns_a_stage_when_a_stage_it_reads_through_a_file_changes(commands) -> None:
    """The probe names no ${sft.output} (say, a guard file names the folder): without ``after`` a
    changed sft leaves it up to date and stale; with ``after: [sft]`` it reruns."""
    for after, expected in (("", "would skip (up to date)"), ("after: [sft]", "would run (probe)")):
        path = write(AFTER.replace("    AFTER\n", f"    {after}\n" if after else ""))
        assert run(str(path)).exit_code == 0
        changed = run(str(path), "--dry-run", "sft.train.lr=0.5").output
        assert f"[probe] {expected}" in changed, changed
        assert "[probe] would skip (up to date)" in run(str(path), "--dry-run").output


def test_after_must_name_earlier_stages(commands) -> None:
    later = write(AFTER.replace("    AFTER\n", "    after: [probe]\n"))
    assert "pipe.yaml:9: probe.after: after: 'probe' is this stage or a later one (a cycle)" in one_error(
        run(str(later))
    )
    assert "after: unknown stage 'sfx'" in one_error(run(str(write(AFTER.replace("AFTER", "after: [sfx]")))))
    assert "expected a list of earlier stage names" in one_error(
        run(str(write(AFTER.replace("AFTER", "after: sft"))))
    )


def test_an_edited_input_reruns_its_stage_even_when_its_name_starts_with_an_earlier_stages(commands) -> None:
    """``sft_train.jsonl`` begins with "sft": for the probe it is still an input, not sft's output."""
    Path("sft_train.jsonl").write_text('{"prompt": "a", "completion": "b"}\n')
    path = write(PIPELINE.replace("    AFTER\n", "").replace("probes: [hello]", "probes: [hello]\n      train_data: sft_train.jsonl"))
    assert run(str(path)).exit_code == 0
    assert "[probe] would skip (up to date)" in run(str(path), "--dry-run").output
    Path("sft_train.jsonl").write_text('{"prompt": "a", "completion": "c"}\n')
    changed = run(str(path), "--dry-run").output
    assert "[sft] would skip (up to date)" in changed and "[probe] would run (probe)" in changed, changed
