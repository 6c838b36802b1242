"""One run folder holds one run: what a second command into the same folder does (no training here:
``Command.execute`` with a stand-in run function; the recipes' own runs are in tests/recipes/)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from safetensors.torch import save_file

from alignkit.commands import BY_NAME, Command, valid_keys
from alignkit.config.base import load_config
from alignkit.config.recipes import SFTConfig
from alignkit.errors import ConfigError
from alignkit.io import atomic_folder, atomic_write, atomic_write_text
from alignkit.result import CommandResult
from alignkit.training import run_folder


class FakeTraining:
    """Stands in for a recipe: writes what a run writes, counts its calls, fails when told to."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = False

    def __call__(self, cfg: SFTConfig, progress) -> CommandResult:
        self.calls += 1
        out = Path(cfg.out)
        (out / "adapter").mkdir(parents=True, exist_ok=True)
        (out / "adapter" / "weights").write_text(f"lr={cfg.train.lr}")
        (out / "run.json").write_text(json.dumps({"lr": cfg.train.lr}))
        if self.fail:
            raise RuntimeError("boom")
        return CommandResult(output=str(out / "adapter"), outputs={"model": cfg.model})


@pytest.fixture()
def sft(monkeypatch, tmp_path: Path):
    monkeypatch.chdir(tmp_path)
    Path("d.jsonl").write_text('{"prompt": "a", "completion": "b"}\n')
    fake = FakeTraining()
    monkeypatch.setattr(Command, "run_function", lambda self: fake)

    def run(*overrides: str, name: str = "sft") -> CommandResult:
        cfg = load_config(BY_NAME[name].config, None, ["out=out", "data.train=d.jsonl", *overrides])
        return BY_NAME[name].execute(cfg, lambda _m: None)

    run.fake = fake  # type: ignore[attr-defined]
    return run


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_finished_run_asked_again_trains_nothing_and_writes_nothing(sft) -> None:
    first = sft()
    assert sft.fake.calls == 1 and first.output == "out/adapter"
    before = snapshot(Path("out"))
    again = sft()
    assert sft.fake.calls == 1, "nothing trained"
    assert snapshot(Path("out")) == before, "nothing written"
    assert again.output == "out/adapter" and again.outputs == {"model": "embedded"}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["train.lr=0.5"], "holds an alignkit sft run with train.lr=0.0002, this one has train.lr=0.5"),
        (["lora.alpha=256"], "with lora.alpha=32.0, this one has lora.alpha=256.0"),
        (["train.max_steps=3"], "train.max_steps=5, this one has train.max_steps=3"),  # fewer steps: not a resume
        (["model=tiny-random"], 'model="embedded", this one has model="tiny-random"'),
    ],
)
def test_a_changed_config_is_refused_naming_the_key_and_the_ways_out(sft, overrides, expected) -> None:
    sft("train.max_steps=5")
    before = snapshot(Path("out"))
    with pytest.raises(ConfigError) as caught:
        sft("train.max_steps=5", *overrides)  # a later override wins
    line = caught.value.one_line()
    assert line.startswith("out: out: ") and expected in line, line
    for way in ("a new out folder", "overwrite=true", "resume=none"):
        assert way in line
    assert sft.fake.calls == 1 and snapshot(Path("out")) == before


def test_changed_data_is_refused(sft) -> None:
    sft()
    Path("d.jsonl").write_text('{"prompt": "a", "completion": "c"}\n')
    with pytest.raises(ConfigError, match="data.train: its contents changed since this run started"):
        sft()


def test_another_commands_folder_is_refused_unless_overwrite(sft) -> None:
    sft()
    with pytest.raises(ConfigError) as caught:
        sft(name="dpo")
    line = caught.value.one_line()
    assert "holds an alignkit sft run, not dpo; use a new out folder; overwrite=true" in line
    assert "resume=none" not in line, "resume=none does not turn an sft folder into a dpo one"
    with pytest.raises(ConfigError, match="not dpo"):
        sft("resume=none", name="dpo")


def test_keys_safe_on_resume_and_more_steps_continue_the_run(sft) -> None:
    sft("train.max_steps=5")
    sft("train.max_steps=5", "train.log_every=3", "train.keep_last=4", "device=cpu")
    assert sft.fake.calls == 1, "only safe keys differ: still the same finished run"
    sft("train.max_steps=8")
    assert sft.fake.calls == 2, "a larger max_steps continues training"
    record = json.loads(Path("out/run-folder.json").read_text())
    assert record["status"] == "complete" and record["config"]["train.max_steps"] == 8


def test_resume_none_and_overwrite_keep_the_old_run_aside_until_the_new_one_completes(sft) -> None:
    sft()
    sft.fake.fail = True
    with pytest.raises(RuntimeError):
        sft("train.lr=0.5", "resume=none")
    assert Path("out/.previous-run/adapter/weights").read_text() == "lr=0.0002", "the finished run is kept"
    record = json.loads(Path("out/run-folder.json").read_text())
    assert record["status"] == "failed" and "boom" in record["error"]
    sft.fake.fail = False
    sft("train.lr=0.5", "resume=none")  # the failed run, same config: resumed, then complete
    assert not Path("out/.previous-run").exists(), "removed once its replacement exists"
    assert Path("out/adapter/weights").read_text() == "lr=0.5"
    sft("overwrite=true", name="dpo")
    assert json.loads(Path("out/run-folder.json").read_text())["command"] == "dpo"


def test_a_folder_with_an_unidentified_run_is_refused(sft) -> None:
    Path("out/checkpoints").mkdir(parents=True)
    with pytest.raises(ConfigError, match="holds checkpoints from a run with no run-folder.json"):
        sft()
    sft("overwrite=true")
    assert not Path("out/.previous-run").exists() and Path("out/adapter").is_dir()


def test_an_interrupted_run_is_marked_and_resumed(sft, monkeypatch) -> None:
    def interrupted(cfg, progress):
        (Path(cfg.out) / "checkpoints").mkdir()
        raise KeyboardInterrupt

    monkeypatch.setattr(Command, "run_function", lambda self: interrupted)
    with pytest.raises(KeyboardInterrupt):
        sft()
    assert json.loads(Path("out/run-folder.json").read_text())["status"] == "interrupted"


def test_a_run_refused_before_writing_anything_leaves_no_folder(sft, monkeypatch) -> None:
    def refused(cfg, progress):
        raise ConfigError("bad record", source="d.jsonl", line=1)

    monkeypatch.setattr(Command, "run_function", lambda self: refused)
    with pytest.raises(ConfigError):
        sft()
    assert not Path("out").exists()
    with pytest.raises(ConfigError, match="d2.jsonl: data.train: not found"):
        sft("data.train=d2.jsonl")
    assert not Path("out").exists()


def test_the_safe_keys_are_config_keys() -> None:
    keys = set(valid_keys(SFTConfig))
    assert set(run_folder.SAFE_ON_RESUME) | set(run_folder.GROWS_ON_RESUME) <= keys


@pytest.fixture()
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_writes_honour_the_umask(tmp_path: Path, umask_022) -> None:
    import torch

    atomic_write_text(tmp_path / "a.txt", "x")
    atomic_write(tmp_path / "w.safetensors", lambda tmp: save_file({"w": torch.zeros(1)}, str(tmp)))
    with atomic_folder(tmp_path / "folder") as tmp:
        (tmp / "sub").mkdir()
        save_file({"w": torch.zeros(1)}, str(tmp / "sub" / "w.safetensors"))
    assert mode(tmp_path / "a.txt") == 0o644
    assert mode(tmp_path / "w.safetensors") == 0o644, "safetensors alone writes 0600"
    assert mode(tmp_path / "folder") == 0o755, "mkdtemp alone makes 0700"
    assert mode(tmp_path / "folder" / "sub") == 0o755
    assert mode(tmp_path / "folder" / "sub" / "w.safetensors") == 0o644
    assert mode(tmp_path / "folder" / "manifest.json") == 0o644
    os.umask(0o077)
    atomic_write_text(tmp_path / "private.txt", "x")
    assert mode(tmp_path / "private.txt") == 0o600, "a stricter umask is honoured too"


def test_a_record_written_before_out_was_the_output_key_still_matches() -> None:
    recorded = {"output_dir": "runs/sft", "train.lr": 1e-3}
    assert run_folder.first_difference(recorded, {"out": "moved/sft", "train.lr": 1e-3}) is None
    assert run_folder.first_difference(recorded, {"out": "runs/sft", "train.lr": 2e-3}) == ("train.lr", 1e-3, 2e-3)
