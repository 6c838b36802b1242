"""Atomic checkpoints with bit-exact resume.

A checkpoint folder holds the trainable weights (safetensors), the optimizer state, RNG states
(torch as safetensors tensors; python and numpy as JSON: no pickle), the scheduler, sampler and loop
state (JSON), and a manifest with each file's sha256. It is written under a temporary name and
renamed when complete; older ones are deleted only after that.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from alignkit import __version__
from alignkit.config.base import config_hash
from alignkit.config.common import portable_spec
from alignkit.data.dataset import data_fingerprint
from alignkit.errors import CheckpointError
from alignkit.io import atomic_folder, atomic_write_text, first_mismatch

_STEP_DIR = re.compile(r"^step-(\d+)$")


@dataclass
class LoopState:
    """Everything besides tensors the loop needs to continue exactly."""

    step: int = 0
    optimizer_steps: int = 0
    nonfinite_steps: int = 0
    best_eval: float | None = None
    evals_without_improvement: int = 0
    epoch_evals_done: int = 0
    best_probe: float | None = None
    probes_without_improvement: int = 0
    extra: dict[str, Any] = field(default_factory=dict)  # recipe state (e.g. KL controller)


def versions() -> dict[str, str]:
    import transformers

    out = {"alignkit": __version__, "torch": torch.__version__, "transformers": transformers.__version__}
    try:
        import peft

        out["peft"] = peft.__version__
    except ImportError:
        pass
    return out


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().contiguous().cpu() for name, p in model.named_parameters() if p.requires_grad}


def _rng_tensors() -> dict[str, torch.Tensor]:
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{index}"] = state
    return tensors


def _rng_json() -> dict[str, Any]:
    version, mt, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state(legacy=True)  # type: ignore[misc]
    assert isinstance(np_keys, np.ndarray)
    return {
        "python": [version, list(mt), gauss],
        "numpy": [np_name, np_keys.tolist(), int(np_pos), int(np_has_gauss), float(np_gauss)],
    }


def _restore_rng(tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    if torch.cuda.is_available():
        cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("torch_cuda_")]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    name, keys, pos, has_gauss, gauss_value = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss_value))


def _scheduler_json(scheduler: Any) -> dict[str, Any]:
    return {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}


def save_checkpoint(
    folder: Path,
    *,
    trainable: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any],
    scheduler: Any,
    sampler_state: dict[str, Any],
    loop_state: LoopState,
    config_hash: str,
) -> None:
    """Writes a complete checkpoint to ``folder`` atomically (temp folder, fsync, manifest, rename).

    ``trainable`` (name -> CPU tensor) and ``optimizer_state`` (``optimizer.state_dict()`` layout) are
    taken as already gathered: ``trainable_state(model)`` and ``optimizer.state_dict()`` in one process
    or under DDP, a collective gather under FSDP (``training/parallel.py``).
    """
    manifest = {"step": loop_state.step, "config_hash": config_hash, "versions": versions()}
    with atomic_folder(folder, manifest) as tmp:
        save_file(trainable, str(tmp / "trainable.safetensors"))
        torch.save(optimizer_state, tmp / "optimizer.pt")
        save_file(_rng_tensors(), str(tmp / "rng.safetensors"))
        state = {
            "loop": loop_state.__dict__,
            "sampler": sampler_state,
            "scheduler": _scheduler_json(scheduler),
            "rng": _rng_json(),
            "config_hash": config_hash,
        }
        (tmp / "state.json").write_text(json.dumps(state))


def checkpoint_dirs(root: Path) -> list[tuple[int, Path]]:
    """Completed-looking checkpoint folders by step (temporary folders are ignored)."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _STEP_DIR.match(p.name))]
    return sorted(found)


def prune_checkpoints(root: Path, keep_last: int) -> None:
    for _, path in checkpoint_dirs(root)[:-keep_last]:
        shutil.rmtree(path, ignore_errors=True)


def find_resume_checkpoint(output_dir: Path, resume: str | None) -> Path | None:
    """``auto`` -> the newest checkpoint under output_dir (None when there is none); or a given path."""
    if not resume or resume in ("false", "no", "none"):
        return None
    if resume == "auto":
        found = checkpoint_dirs(output_dir / "checkpoints")
        return found[-1][1] if found else None
    path = Path(resume)
    if not path.is_dir():
        raise CheckpointError("checkpoint folder not found", source=str(path), field="resume")
    return path


@dataclass
class SavedCheckpoint:
    """A checkpoint read back and verified, before anything is put into a model."""

    folder: Path
    trainable: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any]
    state: dict[str, Any]  # state.json: loop, sampler, scheduler, python/numpy RNG, config hash
    rng_tensors: dict[str, torch.Tensor]


def read_checkpoint(folder: Path, *, trainable_names: Collection[str]) -> SavedCheckpoint:
    """Reads a checkpoint whose manifest checks out and whose weights are exactly ``trainable_names``.

    Refuses (CheckpointError) a missing or failing manifest, a missing trainable parameter or an
    unknown one (a different model or adapter).
    """
    problem = first_mismatch(folder)
    if problem is not None:
        raise CheckpointError(
            f"refusing to resume from this checkpoint: {problem}", source=str(folder), field="resume"
        )
    weights = load_file(str(folder / "trainable.safetensors"))
    missing = [name for name in trainable_names if name not in weights]
    if missing:
        raise CheckpointError(
            f"checkpoint lacks trainable parameter {missing[0]} (different model or adapter?)",
            source=str(folder),
            field="resume",
        )
    expected = set(trainable_names)
    unknown = [name for name in weights if name not in expected]
    if unknown:
        raise CheckpointError(
            f"checkpoint has parameter {unknown[0]}, which this model does not train (different "
            "model or adapter?)",
            source=str(folder),
            field="resume",
        )
    # Our own manifest-checked file: safe to read with weights_only.
    optimizer_state = torch.load(folder / "optimizer.pt", weights_only=True, map_location="cpu")
    state = json.loads((folder / "state.json").read_text())
    return SavedCheckpoint(
        folder=folder,
        trainable=weights,
        optimizer_state=optimizer_state,
        state=state,
        rng_tensors=load_file(str(folder / "rng.safetensors")),
    )


def restore_loop(saved: SavedCheckpoint, *, scheduler: Any) -> tuple[LoopState, dict[str, Any], str]:
    """Restores the scheduler and RNG; returns loop state, sampler state and the saved config hash."""
    scheduler.load_state_dict({**scheduler.state_dict(), **saved.state["scheduler"]})
    _restore_rng(saved.rng_tensors, saved.state["rng"])
    return LoopState(**saved.state["loop"]), saved.state["sampler"], saved.state.get("config_hash", "")


def load_checkpoint(
    folder: Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
) -> tuple[LoopState, dict[str, Any], str]:
    """Restores an unsharded model's weights, optimizer, scheduler and RNG; returns loop state, sampler
    state and config hash. Refuses (CheckpointError) what ``read_checkpoint`` refuses."""
    params = dict(model.named_parameters())
    saved = read_checkpoint(folder, trainable_names=[name for name, p in params.items() if p.requires_grad])
    with torch.no_grad():
        for name, tensor in saved.trainable.items():
            params[name].copy_(tensor.to(params[name].device, params[name].dtype))
    optimizer.load_state_dict(saved.optimizer_state)
    return restore_loop(saved, scheduler=scheduler)


def write_run_manifest(
    output_dir: Path,
    *,
    kind: str,
    cfg: Any,
    result: Any,
    report: Any,
    output: Path,
    count_name: str,
    count: int,
    **extra: Any,
) -> None:
    """``run.json``: what a training run was built from and what it produced (resolved in stages)."""

    manifest = {
        "kind": kind,
        **extra,
        "config_hash": config_hash(cfg),
        "data_fingerprint": data_fingerprint(cfg.data.train),
        "base_model": portable_spec(cfg.model),
        "adapter": cfg.adapter,
        "output": str(output),
        "steps": result.state.step,
        "nonfinite_steps": result.state.nonfinite_steps,
        count_name: count,
        "dropped": dict(report.dropped),
        "truncated": report.truncated,
        "versions": versions(),
        "best_eval_loss": result.state.best_eval,
        "stopped_early": result.stopped_early,
    }
    atomic_write_text(output_dir / "run.json", json.dumps(manifest, indent=2))
