"""``alignkit run PIPELINE.yaml``: stages in order, each the config of its own command.

    name: quickstart
    stages:
      - name: sft                 # the stage's name (and its command unless `command:` is given)
        config: {model: embedded, data: {train: data.jsonl}}
      - name: dpo
        config: {adapter: "${sft.output}"}   # a reference: the sft stage's main output

Every stage writes ``<runs_dir>/<name>/<stage>/`` with ``stage.json``: the fingerprint of its resolved
config and inputs (data files by content, upstream stages by fingerprint), its outputs and its status.
A rerun skips a complete stage whose fingerprint is unchanged, resumes an interrupted or failed one
(training stages continue from their last checkpoint), and reruns a changed one and everything after it
(a stage's fingerprint includes its upstream stages' fingerprints).

Nothing runs before everything is checked: every stage's config is validated (errors name the pipeline
file and line) and every ``${stage.output}`` / ``${stage.dir}`` reference resolved first. A finished
stage that reruns is moved aside to ``.<stage>.previous`` and deleted only once its rerun completes. A
stage whose command exits non-zero (a probe FAIL) prints why; with ``gate: true`` it stops the pipeline,
and either way the pipeline exits 1, unless the stage says ``allow_fail: true`` (a baseline probe of the
untouched model, expected to fail). ``--dry-run`` prints what would run and why.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from alignkit.commands import COMMANDS, OUTPUT_KEY, Command
from alignkit.config.base import StrictModel, config_to_yaml, parse_override, read_yaml, validate_config
from alignkit.config.commands import RunConfig
from alignkit.data.dataset import data_fingerprint
from alignkit.errors import AlignkitError, ConfigError
from alignkit.io import atomic_write_text
from alignkit.result import CommandResult, say

_REF = re.compile(r"\$\{([A-Za-z_][\w-]*)\.(output|dir)\}")
_ANY_REF = re.compile(r"\$\{[^}]*\}?")
STAGE_FILE = "stage.json"
STAGE_KEYS = ("name", "command", "config", "gate", "allow_fail", "after")


@dataclass
class Stage:
    name: str
    command: str
    config: dict[str, Any]
    line: int | None
    gate: bool = False
    allow_fail: bool = False  # a failing result is expected (a baseline probe of the untouched model)
    # Earlier stages whose outputs this one reads through a file the pipeline does not look into (a
    # guard file naming classifier folders): it reruns when they change, as for a ${stage.output}.
    after: tuple[str, ...] = ()
    # The line of each key of ``config`` in the pipeline file, and the keys set on the command line.
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)
    overridden: set[tuple[str, ...]] = field(default_factory=set)


@dataclass
class Pipeline:
    name: str
    runs_dir: Path
    stages: list[Stage]
    source: str

    @property
    def root(self) -> Path:
        return self.runs_dir / self.name


class StageFailed(AlignkitError):
    """A stage's command failed in a way the pipeline cannot go on from (lint's blocking problems, no pairs)."""


def _fingerprint_path(value: str) -> str | None:
    """The fingerprint of a file or folder a stage's config names; None for any other string (an
    instruction, a prompt: text that no file system would take as a name is simply not a path)."""
    if value in ("embedded", "tiny-random") or not value or "\n" in value:
        return None
    path = Path(value)
    try:
        if not path.exists():
            return None
    except OSError:  # e.g. a name longer than the file system allows
        return None

    if path.is_dir() and sum(1 for _ in path.rglob("*")) > 2000:
        return f"dir:{path.stat().st_mtime_ns}"
    return data_fingerprint(path)


def _walk_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _walk_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _walk_strings(v)]
    return []


def load_pipeline(path: str | Path, overrides: list[str] | None = None) -> Pipeline:
    """Reads and checks a pipeline file: known commands, unique names, references to earlier stages."""
    data, lines = read_yaml(path)
    source = str(path)
    unknown = set(data) - {"name", "runs_dir", "stages"}
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(
            "unknown key (expected name, runs_dir, stages)", source=source, line=lines.get((key,)), field=key
        )
    raw_stages = data.get("stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        raise ConfigError(
            "expected a non-empty list of stages", source=source, line=lines.get(("stages",)), field="stages"
        )
    stages: list[Stage] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_stages):
        line = lines.get(("stages", str(index)))
        if not isinstance(raw, dict) or "name" not in raw:
            raise ConfigError(
                "expected a mapping with a name", source=source, line=line, field=f"stages[{index}]"
            )
        extra = set(raw) - set(STAGE_KEYS)
        if extra:
            key = sorted(extra)[0]
            raise ConfigError(
                f"unknown stage key {key!r} (expected {', '.join(STAGE_KEYS)})",
                source=source,
                line=lines.get(("stages", str(index), key), line),
                field=f"stages[{index}]",
            )
        name, command = str(raw["name"]), str(raw.get("command", raw["name"]))
        if command not in STAGE_COMMANDS:
            raise ConfigError(
                f"unknown stage command {command!r} (expected one of {', '.join(sorted(STAGE_COMMANDS))})",
                source=source,
                line=line,
                field=f"stages[{index}].command",
            )
        if name in seen:
            raise ConfigError(
                f"duplicate stage name {name!r}", source=source, line=line, field=f"stages[{index}]"
            )
        config = raw.get("config") or {}
        if not isinstance(config, dict):
            raise ConfigError("expected a mapping", source=source, line=line, field=f"stages[{index}].config")
        switches = {}
        for key in ("gate", "allow_fail"):
            switches[key] = raw.get(key, False)
            if not isinstance(switches[key], bool):
                raise ConfigError(
                    f"expected true or false, got {switches[key]!r}",
                    source=source,
                    line=lines.get(("stages", str(index), key), line),
                    field=f"{name}.{key}",
                )
        if switches["gate"] and switches["allow_fail"]:
            raise ConfigError(
                "gate: true stops on a failure that allow_fail: true allows; set one",
                source=source,
                line=line,
                field=name,
            )
        after = raw.get("after", [])
        problem = None
        if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
            problem = f"expected a list of earlier stage names, got {after!r}"
        else:
            for ref in after:
                why = _not_earlier(ref, name, seen, raw_stages)
                if why is not None:
                    cycle = f"after: {ref!r} is this stage or a later one (a cycle)"
                    problem = cycle if why == "later" else f"after: unknown stage {ref!r}"
                    break
        if problem is not None:
            raise ConfigError(
                problem,
                source=source,
                line=lines.get(("stages", str(index), "after"), line),
                field=f"{name}.after",
            )
        prefix = ("stages", str(index), "config")
        config_lines = {
            key[3:]: number for key, number in lines.items() if key[:3] == prefix and len(key) > 3
        }
        _check_references(config, name, seen, raw_stages, source=source, lines=config_lines, line=line)
        seen.add(name)
        stages.append(
            Stage(
                name,
                command,
                config,
                line,
                gate=switches["gate"],
                allow_fail=switches["allow_fail"],
                after=tuple(after),
                lines=config_lines,
            )
        )
    for text in overrides or []:
        key_path, value = parse_override(text)
        target = next((s for s in stages if s.name == key_path[0]), None)
        if target is None or len(key_path) < 2:
            raise ConfigError(
                f"override {text!r}: expected <stage>.<key>=value with a stage of this pipeline",
                source="<command line>",
            )
        node = target.config
        for part in key_path[1:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[key_path[-1]] = value
        target.overridden.add(tuple(key_path[1:]))
    name = str(data.get("name") or Path(path).stem)
    runs_dir = Path(data.get("runs_dir", "runs"))
    return Pipeline(name=name, runs_dir=runs_dir, stages=stages, source=source)


def _not_earlier(
    ref: str, name: str, seen: set[str], raw_stages: list[Any]
) -> Literal["later", "unknown"] | None:
    """Why stage ``name`` may not use stage ``ref``'s outputs, or None when ``ref`` runs before it."""
    if ref != name and ref in seen:
        return None
    if ref == name or any(isinstance(s, dict) and s.get("name") == ref for s in raw_stages):
        return "later"
    return "unknown"


def _check_references(
    config: dict[str, Any],
    name: str,
    seen: set[str],
    raw_stages: list[Any],
    *,
    source: str,
    lines: dict[tuple[str, ...], int],
    line: int | None,
) -> None:
    """Every ``${...}`` in a stage's config is ``${<earlier stage>.output}`` or ``${<earlier stage>.dir}``."""

    def walk(value: Any, path: tuple[str, ...]) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, (*path, str(key)))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, (*path, str(index)))
        elif isinstance(value, str):
            for text in _ANY_REF.findall(value):
                match = _REF.fullmatch(text)
                problem = None
                if match is None:
                    problem = f"unknown reference {text}: expected ${{<stage>.output}} or ${{<stage>.dir}}"
                elif (why := _not_earlier(ref := match.group(1), name, seen, raw_stages)) is not None:
                    problem = (
                        f"reference ${{{ref}...}} points to this stage or a later one (a cycle)"
                        if why == "later"
                        else f"reference to unknown stage {ref!r}"
                    )
                if problem is not None:
                    raise ConfigError(
                        problem, source=source, line=lines.get(path, line), field=f"{name}." + ".".join(path)
                    )

    walk(config, ())


def _substitute(value: Any, outputs: dict[str, dict[str, Any]]) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            return str(outputs[match.group(1)][match.group(2)])

        return _REF.sub(replace, value)
    if isinstance(value, dict):
        return {k: _substitute(v, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, outputs) for v in value]
    return value


def _stage_fingerprint(stage: Stage, config: dict[str, Any], upstream: dict[str, str]) -> str:
    # Every file or folder the resolved config names, earlier stages' outputs included: those are also
    # covered by the upstream fingerprints below, and hashing them too costs little.
    inputs = {s: fp for s in sorted(set(_walk_strings(config))) if (fp := _fingerprint_path(s)) is not None}
    refs = sorted(
        {ref for text in _walk_strings(stage.config) for ref, _ in _REF.findall(text)} | set(stage.after)
    )
    payload = {
        "command": stage.command,
        "config": stage.config,
        "inputs": inputs,
        "upstream": {ref: upstream[ref] for ref in refs},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def read_stage(stage_dir: Path) -> dict[str, Any] | None:
    path = stage_dir / STAGE_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def _stage_dir(pipeline: Pipeline, stage: Stage) -> Path:
    return pipeline.root / stage.name


def _aside(pipeline: Pipeline, stage: Stage) -> Path:
    return pipeline.root / f".{stage.name}.previous"


def stage_config(pipeline: Pipeline, stage: Stage, config: dict[str, Any]) -> StrictModel:
    """The validated config of ``stage``'s command (its output inside the stage folder); a mistake names the
    pipeline file and the line of the key."""
    command = STAGE_COMMANDS[stage.command]
    assert command.stage is not None
    stage_dir = _stage_dir(pipeline, stage)
    name = command.stage.output(config) if callable(command.stage.output) else command.stage.output
    output = stage_dir if name == "." else stage_dir / name
    data = {**config, **command.stage.defaults, OUTPUT_KEY: str(output)}
    try:
        return validate_config(
            command.config, data, source=pipeline.source, lines=stage.lines, override_keys=stage.overridden
        )
    except ConfigError as error:
        error.field = f"{stage.name}.{error.field}" if error.field else stage.name
        if error.line is None and error.source == pipeline.source:
            error.line = stage.line
        raise


def check_pipeline(pipeline: Pipeline) -> None:
    """Validates every stage's config before any runs; references resolve to where the stage will write."""
    placeholders: dict[str, dict[str, Any]] = {}
    for stage in pipeline.stages:
        cfg = stage_config(pipeline, stage, _substitute(stage.config, placeholders))
        command = STAGE_COMMANDS[stage.command]
        assert command.stage is not None
        placeholders[stage.name] = {
            "output": str(getattr(cfg, OUTPUT_KEY)),
            "dir": str(_stage_dir(pipeline, stage)),
        }


def _why(recorded: dict[str, Any] | None, fingerprint: str, forced: bool) -> str:
    if forced:
        return "asked for by --from/--only"
    if recorded is None:
        return "has not run"
    if recorded.get("fingerprint") != fingerprint:
        return "its config, inputs or an upstream stage changed"
    return f"its last attempt is {recorded.get('status')}"


def _replace_previous(pipeline: Pipeline, stage: Stage, recorded: dict[str, Any] | None) -> None:
    """Before a stage reruns: a finished stage folder is moved aside (deleted when the rerun completes); an
    unfinished one, which holds nothing finished, is deleted."""
    stage_dir = _stage_dir(pipeline, stage)
    if not stage_dir.exists():
        return
    if recorded is not None and recorded.get("status") == "complete":
        aside = _aside(pipeline, stage)
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(stage_dir, aside)
    else:
        shutil.rmtree(stage_dir)


def _report_problems(stage: Stage, outputs: dict[str, Any], echo: Callable[[str], None]) -> bool:
    """Prints why a stage's command exited non-zero; True when it did."""
    if not outputs.get("code"):
        return False
    for problem in outputs.get("problems") or [f"exit code {outputs['code']}"]:
        echo(f"[{stage.name}] FAIL: {problem}")
    return True


@dataclass
class PipelineRun:
    """Each stage's recorded outputs, the stages whose command exited non-zero, and the gate that stopped it."""

    outputs: dict[str, dict[str, Any]]
    failed: list[str] = field(default_factory=list)
    stopped_at: str | None = None


def run_pipeline(
    pipeline: Pipeline,
    *,
    from_stage: str | None = None,
    only: str | None = None,
    dry_run: bool = False,
    echo: Callable[[str], None] = print,
) -> PipelineRun:
    """Runs (or skips, or resumes) each stage in order, after checking every stage's config."""
    names = [s.name for s in pipeline.stages]
    for flag, value in (("--from", from_stage), ("--only", only)):
        if value is not None and value not in names:
            raise ConfigError(
                f"{flag} {value!r}: no such stage (stages: {', '.join(names)})", source=pipeline.source
            )
    check_pipeline(pipeline)
    run = PipelineRun(outputs={})
    fingerprints: dict[str, str] = {}
    forced = False
    for stage in pipeline.stages:
        stage_dir = _stage_dir(pipeline, stage)
        config = _substitute(stage.config, run.outputs)
        fingerprint = _stage_fingerprint(stage, config, fingerprints)
        fingerprints[stage.name] = fingerprint
        recorded = read_stage(stage_dir)
        forced = forced or stage.name == from_stage or stage.name == only
        selected = only is None or only == stage.name
        complete = recorded is not None and recorded.get("status") == "complete"
        if not selected or (from_stage is not None and not forced):
            if not complete or recorded is None:
                raise AlignkitError(
                    f"stage {stage.name!r} has not completed; run it first",
                    source=pipeline.source,
                    line=stage.line,
                )
            if recorded.get("fingerprint") != fingerprint:
                echo(
                    f"[{stage.name}] note: inputs or config changed since it ran; using its outputs as they are"
                )
            run.outputs[stage.name] = recorded["outputs"]
            continue
        up_to_date = (
            complete and recorded is not None and recorded.get("fingerprint") == fingerprint and not forced
        )
        resuming = (
            recorded is not None
            and recorded.get("status") in ("running", "failed", "interrupted")
            and recorded.get("fingerprint") == fingerprint
            and not forced
        )
        if dry_run:
            verb = "skip (up to date)" if up_to_date else "resume" if resuming else "run"
            reason = "" if up_to_date else f": {_why(recorded, fingerprint, forced)}"
            echo(f"[{stage.name}] would {verb} ({stage.command}){reason}")
            placeholder = {"output": str(stage_dir), "dir": str(stage_dir)}
            run.outputs[stage.name] = recorded["outputs"] if up_to_date and recorded else placeholder
            continue
        if up_to_date and recorded is not None:
            echo(f"[{stage.name}] up to date, skipped")
            outputs: dict[str, Any] = recorded["outputs"]
        else:
            cfg = stage_config(pipeline, stage, config)
            if not resuming:
                _replace_previous(pipeline, stage, recorded)
            record = {
                "stage": stage.name,
                "command": stage.command,
                "fingerprint": fingerprint,
                "config": config,
                "upstream": {k: fingerprints[k] for k in fingerprints if k != stage.name},
            }
            echo(f"[{stage.name}] {'resuming' if resuming else 'running'} ({stage.command})")
            outputs = _run_stage(STAGE_COMMANDS[stage.command], cfg, stage_dir, record, echo)
            shutil.rmtree(_aside(pipeline, stage), ignore_errors=True)
        run.outputs[stage.name] = outputs
        if outputs.get("scorecard"):  # the main job's figures on the terminal, as the report opens with them
            echo(f"\n{outputs['scorecard']}\n")
        if _report_problems(stage, outputs, echo):
            if stage.allow_fail:
                echo(f"[{stage.name}] allow_fail: a failure expected here, not counted")
                continue
            run.failed.append(stage.name)
            if stage.gate:
                run.stopped_at = stage.name
                echo(f"[{stage.name}] gate: the pipeline stops here")
                break
    return run


def _write_record(stage_dir: Path, record: dict[str, Any]) -> None:
    atomic_write_text(stage_dir / STAGE_FILE, json.dumps(record, indent=2, default=str))


def _run_stage(
    command: Command, cfg: StrictModel, stage_dir: Path, record: dict[str, Any], echo: Callable[[str], None]
) -> dict[str, Any]:
    """Runs one stage's command, recorded in ``stage.json`` as running, then complete, failed or interrupted;
    returns what the stage records: ``output``, the command's other outputs, its exit code and problems."""
    stage = command.stage
    assert stage is not None
    stage_dir.mkdir(parents=True, exist_ok=True)
    record = {**record, "status": "running", "started": time.time()}
    _write_record(stage_dir, record)
    output = getattr(cfg, OUTPUT_KEY)
    started = time.perf_counter()
    try:
        if Path(output) != stage_dir:  # a training run writes its own config.yaml into the stage folder
            atomic_write_text(stage_dir / "config.yaml", config_to_yaml(cfg))
        result = command.execute(cfg, _quiet)
        if result.code != 0 and stage.failure is not None:
            detail = f": {result.problems[0]}" if result.problems else ""
            raise StageFailed(f"{stage.failure}{detail}", source=str(output))
    except BaseException as error:
        status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        _write_record(
            stage_dir, {**record, "status": status, "error": f"{type(error).__name__}: {error}"[:500]}
        )
        raise
    outputs = {
        "output": result.output or str(output),
        **result.outputs,
        "code": result.code,
        "problems": list(result.problems),
    }
    outputs.setdefault("dir", str(stage_dir))
    record.update(status="complete", outputs=outputs, seconds=round(time.perf_counter() - started, 1))
    _write_record(stage_dir, record)
    echo(f"[{record['stage']}] done in {record['seconds']} s -> {outputs['output']}")
    return outputs


def _quiet(_message: str) -> None:
    pass


STAGE_COMMANDS: dict[str, Command] = {
    command.name: command for command in COMMANDS if command.stage is not None
}


def run_command(cfg: RunConfig, progress: Callable[[str], None] = _quiet) -> CommandResult:
    """``alignkit run``: the pipeline's stages in order; the last stage's output is the output. Exit code 1
    when a stage's command exited non-zero (a probe FAIL), whether or not its gate stopped the pipeline."""
    if not cfg.pipeline:
        raise ConfigError("expected a pipeline file: alignkit run PIPELINE.yaml", field="pipeline")
    loaded = load_pipeline(cfg.pipeline, cfg.overrides)
    run = run_pipeline(loaded, from_stage=cfg.from_stage, only=cfg.only, dry_run=cfg.dry_run, echo=print)
    if cfg.dry_run:
        return CommandResult(show=say(f"pipeline {loaded.name}: dry run, nothing ran"))
    if run.failed:
        where = f"stopped at gate {run.stopped_at!r}" if run.stopped_at else "finished"
        return CommandResult(
            code=1,
            problems=[f"stage {name} failed" for name in run.failed],
            show=say(f"pipeline {loaded.name} {where} with failing stages: {', '.join(run.failed)}"),
        )
    last = loaded.stages[-1].name
    if last not in run.outputs:
        return CommandResult()
    output = str(run.outputs[last]["output"])
    return CommandResult(output=output, show=say(f"pipeline {loaded.name} complete; last output: {output}"))
