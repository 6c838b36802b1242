"""``alignkit run PIPELINE.yaml``: stages in order, each the config of its own command.

    name: quickstart
    stages:
      - name: sft                 # the stage's name (and its command unless `command:` is given)
        config: {model: embedded, data: {train: data.jsonl}}
      - name: dpo
        config: {adapter: "${sft.output}"}   # a reference: the sft stage's main output

Every stage writes ``<runs_dir>/<name>/<stage>/`` with ``stage.json``: the fingerprint of its resolved
config and inputs (data files by content, upstream stages by fingerprint), its outputs and its status.
A rerun skips a complete stage whose fingerprint is unchanged, resumes an interrupted one (training
stages continue from their last checkpoint), and reruns a changed one and everything after it (a
stage's fingerprint includes its upstream stages' fingerprints).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignkit.commands import COMMANDS, Command
from alignkit.config.base import config_to_yaml, load_config, parse_override, read_yaml
from alignkit.config.commands import RunConfig
from alignkit.data.dataset import data_fingerprint
from alignkit.errors import AlignkitError, ConfigError
from alignkit.io import atomic_write_text
from alignkit.result import CommandResult, say

_REF = re.compile(r"\$\{([A-Za-z_][\w-]*)\.(output|dir)\}")
STAGE_FILE = "stage.json"


@dataclass
class Stage:
    name: str
    command: str
    config: dict[str, Any]
    line: int | None


@dataclass
class Pipeline:
    name: str
    runs_dir: Path
    stages: list[Stage]
    source: str


# command -> (runner(config dict, stage dir) -> outputs dict)
StageRunner = Callable[[dict[str, Any], Path], dict[str, Any]]


def _fingerprint_path(value: str) -> str | None:
    path = Path(value)
    if not path.exists() or value in ("embedded", "tiny-random"):
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
        raise ConfigError("unknown key (expected name, runs_dir, stages)", source=source,
                          line=lines.get((key,)), field=key)
    raw_stages = data.get("stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        raise ConfigError("expected a non-empty list of stages", source=source, line=lines.get(("stages",)),
                          field="stages")
    stages: list[Stage] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_stages):
        line = lines.get(("stages", str(index)))
        if not isinstance(raw, dict) or "name" not in raw:
            raise ConfigError("expected a mapping with a name", source=source, line=line, field=f"stages[{index}]")
        extra = set(raw) - {"name", "command", "config"}
        if extra:
            raise ConfigError(f"unknown stage key {sorted(extra)[0]!r} (expected name, command, config)",
                              source=source, line=line, field=f"stages[{index}]")
        name, command = str(raw["name"]), str(raw.get("command", raw["name"]))
        if command not in STAGE_COMMANDS:
            raise ConfigError(f"unknown stage command {command!r} (expected one of {', '.join(sorted(STAGE_COMMANDS))})",
                              source=source, line=line, field=f"stages[{index}].command")
        if name in seen:
            raise ConfigError(f"duplicate stage name {name!r}", source=source, line=line, field=f"stages[{index}]")
        config = raw.get("config") or {}
        if not isinstance(config, dict):
            raise ConfigError("expected a mapping", source=source, line=line, field=f"stages[{index}].config")
        for text in _walk_strings(config):
            for ref, _ in _REF.findall(text):
                if ref == name or ref not in seen:
                    later = ref == name or any(s.get("name") == ref for s in raw_stages if isinstance(s, dict))
                    problem = (f"reference ${{{ref}...}} points to this stage or a later one (a cycle)" if later
                               else f"reference to unknown stage {ref!r}")
                    raise ConfigError(problem, source=source, line=line, field=f"stages[{index}].config")
        seen.add(name)
        stages.append(Stage(name, command, config, line))
    for text in overrides or []:
        key_path, value = parse_override(text)
        target = next((s for s in stages if s.name == key_path[0]), None)
        if target is None or len(key_path) < 2:
            raise ConfigError(f"override {text!r}: expected <stage>.<key>=value with a stage of this pipeline",
                              source="<command line>")
        node = target.config
        for part in key_path[1:-1]:
            node = node.setdefault(part, {})
        node[key_path[-1]] = value
    name = str(data.get("name") or Path(path).stem)
    runs_dir = Path(data.get("runs_dir", "runs"))
    return Pipeline(name=name, runs_dir=runs_dir, stages=stages, source=source)


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
    inputs = {s: fp for s in sorted(set(_walk_strings(config))) if (fp := _fingerprint_path(s)) is not None
              and not any(s.startswith(str(d)) for d in upstream)}
    refs = sorted({ref for text in _walk_strings(stage.config) for ref, _ in _REF.findall(text)})
    payload = {"command": stage.command, "config": stage.config, "inputs": inputs,
               "upstream": {ref: upstream[ref] for ref in refs}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def read_stage(stage_dir: Path) -> dict[str, Any] | None:
    path = stage_dir / STAGE_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def run_pipeline(pipeline: Pipeline, *, from_stage: str | None = None, only: str | None = None,
                 echo: Callable[[str], None] = print) -> dict[str, dict[str, Any]]:
    """Runs (or skips, or resumes) each stage in order; returns each stage's recorded outputs."""
    names = [s.name for s in pipeline.stages]
    for flag, value in (("--from", from_stage), ("--only", only)):
        if value is not None and value not in names:
            raise ConfigError(f"{flag} {value!r}: no such stage (stages: {', '.join(names)})", source=pipeline.source)
    root = pipeline.runs_dir / pipeline.name
    outputs: dict[str, dict[str, Any]] = {}
    fingerprints: dict[str, str] = {}
    forced = False
    for stage in pipeline.stages:
        stage_dir = root / stage.name
        config = _substitute(stage.config, outputs)
        fingerprint = _stage_fingerprint(stage, config, fingerprints)
        fingerprints[stage.name] = fingerprint
        recorded = read_stage(stage_dir)
        forced = forced or stage.name == from_stage or stage.name == only
        selected = only is None or only == stage.name
        complete = recorded is not None and recorded.get("status") == "complete"
        if not selected or (from_stage is not None and not forced):
            if not complete:
                raise AlignkitError(f"stage {stage.name!r} has not completed; run it first", source=pipeline.source,
                                    line=stage.line)
            if recorded is not None and recorded.get("fingerprint") != fingerprint:
                echo(f"[{stage.name}] note: inputs or config changed since it ran; using its outputs as they are")
            outputs[stage.name] = recorded["outputs"]  # type: ignore[index]
            continue
        if complete and recorded is not None and recorded.get("fingerprint") == fingerprint and not forced:
            echo(f"[{stage.name}] up to date, skipped")
            outputs[stage.name] = recorded["outputs"]
            continue
        resuming = (recorded is not None and recorded.get("status") == "running"
                    and recorded.get("fingerprint") == fingerprint and not forced)
        if not resuming and stage_dir.exists():
            shutil.rmtree(stage_dir)
        stage_dir.mkdir(parents=True, exist_ok=True)
        echo(f"[{stage.name}] {'resuming' if resuming else 'running'} ({stage.command})")
        record = {"stage": stage.name, "command": stage.command, "fingerprint": fingerprint, "status": "running",
                  "config": config, "started": time.time(), "upstream": {k: fingerprints[k] for k in fingerprints
                                                                          if k != stage.name}}
        atomic_write_text(stage_dir / STAGE_FILE, json.dumps(record, indent=2, default=str))
        started = time.perf_counter()
        result = STAGE_COMMANDS[stage.command](config, stage_dir)
        result.setdefault("dir", str(stage_dir))
        result.setdefault("output", str(stage_dir))
        record.update(status="complete", outputs=result, seconds=round(time.perf_counter() - started, 1))
        atomic_write_text(stage_dir / STAGE_FILE, json.dumps(record, indent=2, default=str))
        outputs[stage.name] = result
        echo(f"[{stage.name}] done in {record['seconds']} s -> {result['output']}")
    return outputs


# ----------------------------------------------------------------------------------------------
# Stage runners: one per registry command that can be a stage.


def _stage_runner(command: Command) -> StageRunner:
    """Builds the command's config from the stage's mapping (its output inside the stage folder), runs it,
    and returns what the stage records: ``output`` and the command's other outputs."""
    stage = command.stage
    assert stage is not None

    def run(config: dict[str, Any], stage_dir: Path) -> dict[str, Any]:
        name = stage.output(config) if callable(stage.output) else stage.output
        output = stage_dir if name == "." else stage_dir / name
        cfg = load_config(command.config, None, defaults={**config, **stage.defaults, stage.output_key: str(output)})
        if name != ".":  # a training run writes its own config.yaml into the stage folder
            atomic_write_text(stage_dir / "config.yaml", config_to_yaml(cfg))
        result = command.run_function()(cfg, _quiet)
        if result.code != 0 and stage.failure is not None:
            raise AlignkitError(stage.failure, source=str(output))
        return {"output": result.output or str(output), **result.outputs}

    return run


def _quiet(_message: str) -> None:
    pass


STAGE_COMMANDS: dict[str, StageRunner] = {
    command.name: _stage_runner(command) for command in COMMANDS if command.stage is not None
}


def run_command(cfg: RunConfig, progress: Callable[[str], None] = _quiet) -> CommandResult:
    """``alignkit run``: the pipeline's stages in order; the last stage's output is the output."""
    if not cfg.pipeline:
        raise ConfigError("expected a pipeline file: alignkit run PIPELINE.yaml", field="pipeline")
    loaded = load_pipeline(cfg.pipeline, cfg.overrides)
    outputs = run_pipeline(loaded, from_stage=cfg.from_stage, only=cfg.only, echo=print)
    last = loaded.stages[-1].name
    if last not in outputs:
        return CommandResult()
    output = str(outputs[last]["output"])
    return CommandResult(output=output, show=say(f"pipeline {loaded.name} complete; last output: {output}"))
