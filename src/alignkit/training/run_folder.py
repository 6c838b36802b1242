"""One run folder holds one run: the command, config and data that produced what is in it.

A training command claims its ``out`` folder before it loads anything (``claim``): the folder's record,
``run-folder.json``, names the command, the resolved config, its hash and the fingerprints of the files
it reads. The command then

- starts a new run when the folder holds none;
- resumes when the record matches, except keys that are safe to change on resume (``SAFE_ON_RESUME``);
- says "already complete, nothing trained" and writes nothing when a finished run is asked again;
- refuses (exit 2, one line naming the first differing key and the ways out) anything else, and a
  folder that holds another command's run or a run alignkit cannot identify.

``resume=none`` and ``overwrite=true`` start again from step 0: the previous run is moved aside into
``.previous-run/`` (not deleted) and removed only when the new run completes (``finish``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from alignkit.config.base import config_hash
from alignkit.data.dataset import data_fingerprint
from alignkit.errors import ConfigError
from alignkit.io import atomic_write_text

RECORD = "run-folder.json"
PREVIOUS = ".previous-run"

# Keys that change how a run is carried out or logged, not the weights it converges to, so a resumed
# run may differ in them. ``train.max_steps`` may grow (training continues from the last checkpoint);
# ``out`` may differ because a folder may be moved.
SAFE_ON_RESUME = (
    "out", "resume", "overwrite", "device",
    "train.log_every", "train.save_every", "train.keep_last", "train.max_nonfinite_steps",
    "train.compile", "train.gradient_checkpointing", "train.loss_chunk_size",
)
GROWS_ON_RESUME = ("train.max_steps",)
# ``out``'s name in records written before every command's output key became ``out``: as safe as ``out``.
RENAMED_SINCE = ("output_dir",)
# Files and folders a run writes; a folder holding any of them without a record is not ours to reuse.
RUN_ENTRIES = ("checkpoints", "adapter", "model", "reward_model", "run.json", "metrics.jsonl", "config.yaml",
               "reference_logps.safetensors")
INPUT_KEYS = ("data.train", "data.eval", "adapter")


@dataclass
class Claim:
    """What ``claim`` decided. ``complete``: a finished run of this exact config is already here."""

    folder: Path
    record: dict[str, Any]
    complete: bool = False
    created: bool = False  # the folder did not exist before this run


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def _input_fingerprints(flat: dict[str, Any]) -> dict[str, str]:
    """The content of each file or folder the run reads (training data, held-out data, starting adapter)."""
    found: dict[str, str] = {}
    for key in INPUT_KEYS:
        value = flat.get(key)
        if isinstance(value, str) and value and Path(value).exists():
            found[key] = data_fingerprint(value)
    return found


def _read_record(folder: Path) -> dict[str, Any] | None:
    path = folder / RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConfigError(f"{RECORD} is not valid JSON; use a new out folder or overwrite=true",
                          source=str(folder), field="out") from None
    return record if isinstance(record, dict) else None


def _ways_out(*, same_command: bool) -> str:
    ways = ["a new out folder", "overwrite=true (the old run is kept aside until the new one completes)"]
    if same_command:
        ways.append("resume=none (train again from step 0 here)")
    return "; ".join(ways)


def first_difference(recorded: dict[str, Any], current: dict[str, Any]) -> tuple[str, Any, Any] | None:
    """The first key (sorted) whose value differs and is not safe to change on resume: (key, was, now)."""
    for key in sorted(set(recorded) | set(current)):
        if key in SAFE_ON_RESUME or key in RENAMED_SINCE:
            continue
        was, now = recorded.get(key), current.get(key)
        if key in GROWS_ON_RESUME and was is not None and now is not None and now >= was:
            continue
        if was != now:
            return key, was, now
    return None


def _move_aside(folder: Path) -> None:
    """Moves every entry of the previous run into ``.previous-run/`` (replacing an older one there)."""
    aside = folder / PREVIOUS
    shutil.rmtree(aside, ignore_errors=True)
    entries = [entry for entry in folder.iterdir() if entry.name in (*RUN_ENTRIES, RECORD)]
    if not entries:
        return
    aside.mkdir()
    for entry in entries:
        os.replace(entry, aside / entry.name)


def _start(folder: Path, command: str, flat: dict[str, Any], cfg: BaseModel) -> Claim:
    record = {"command": command, "status": "running", "config_hash": config_hash(cfg), "config": flat,
              "inputs": _input_fingerprints(flat), "started": time.time()}
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / RECORD, json.dumps(record, indent=2, default=str))
    return Claim(folder=folder, record=record, created=created)


def claim(command: str, cfg: Any) -> Claim:
    """Checks that ``cfg.out`` may receive this run (see the module docstring) and records the run.

    Raises ConfigError (exit 2) when the folder holds something else; writes nothing when the run is
    already complete."""
    folder = Path(cfg.out)
    flat = _flatten(cfg.model_dump(mode="json"))
    for key in INPUT_KEYS:
        value = flat.get(key)
        if isinstance(value, str) and value and not Path(value).exists():
            raise ConfigError("not found", source=value, field=key)
    overwrite = bool(getattr(cfg, "overwrite", False))
    fresh = overwrite or str(cfg.resume).lower() in ("none", "false", "no")
    record = _read_record(folder) if folder.is_dir() else None
    if record is None:
        leftovers = sorted(e.name for e in folder.iterdir() if e.name in RUN_ENTRIES) if folder.is_dir() else []
        if leftovers and not overwrite:
            raise ConfigError(f"holds {leftovers[0]} from a run with no {RECORD} (another tool, or an older "
                              f"alignkit); use {_ways_out(same_command=False)}",
                              source=str(folder), field="out")
        if leftovers:
            _move_aside(folder)
        return _start(folder, command, flat, cfg)
    if record.get("command") != command and not overwrite:
        raise ConfigError(f"holds an alignkit {record.get('command')} run, not {command}; use "
                          f"{_ways_out(same_command=False)}", source=str(folder), field="out")
    if fresh:
        _move_aside(folder)
        return _start(folder, command, flat, cfg)
    difference = first_difference(record.get("config", {}), flat)
    if difference is None:
        inputs, recorded_inputs = _input_fingerprints(flat), record.get("inputs", {})
        changed = next((key for key in sorted(set(inputs) | set(recorded_inputs))
                        if inputs.get(key) != recorded_inputs.get(key)), None)
        if changed is not None:
            raise ConfigError(f"{changed}: its contents changed since this run started (fingerprint "
                              f"{recorded_inputs.get(changed)} -> {inputs.get(changed)}); use "
                              f"{_ways_out(same_command=True)}", source=str(folder), field="out")
    else:
        key, was, now = difference
        raise ConfigError(f"holds an alignkit {command} run with {key}={json.dumps(was)}, this one has {key}={json.dumps(now)}; "
                          f"use {_ways_out(same_command=True)}", source=str(folder), field="out")
    max_steps = "train.max_steps"
    grown = record.get("config", {}).get(max_steps) != flat.get(max_steps)
    if record.get("status") == "complete" and not grown:
        return Claim(folder=folder, record=record, complete=True)
    return _start(folder, command, flat, cfg)


def finish(run: Claim, *, output: str | None, outputs: dict[str, Any]) -> None:
    """Marks the run complete (with what it produced) and removes the previous run kept aside."""
    record = {**run.record, "status": "complete", "finished": time.time(), "output": output, "outputs": outputs}
    atomic_write_text(run.folder / RECORD, json.dumps(record, indent=2, default=str))
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(run.folder / PREVIOUS)


def fail(run: Claim, error: BaseException) -> None:
    """Marks the run failed or interrupted (a rerun with the same config resumes from its last checkpoint); a run
    that failed before writing anything into the folder it created removes that folder."""
    if run.created and [entry.name for entry in run.folder.iterdir()] == [RECORD]:
        # Refused before it wrote anything (bad data, a model that does not load): leave no folder behind.
        shutil.rmtree(run.folder)
        return
    status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
    record = {**run.record, "status": status, "error": f"{type(error).__name__}: {error}"[:500]}
    with contextlib.suppress(OSError):
        atomic_write_text(run.folder / RECORD, json.dumps(record, indent=2, default=str))
