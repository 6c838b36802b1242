"""Every user mistake is one line and exit 2: a table of mistaken command lines, each of which must give
exit code 2, exactly one ``error:`` line on stderr, no traceback, and leave the folder as it was."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alignkit.cli import app
from alignkit.config.base import load_config
from alignkit.config.recipes import SFTConfig
from alignkit.training import run_folder

RECORD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello."}]}
PAIR = {"prompt": "hi", "chosen": "Hello.", "rejected": "Go away."}
PIPELINE = """\
name: p
stages:
  - name: sft
    config: {model: tiny-random, data: {train: d.jsonl}}
"""

# (command line, what the one error line must contain)
MISTAKES: list[tuple[str, str]] = [
    # Unknown keys and options: the key that was meant, transformers/TRL names included.
    ("sft --model tiny-random", "did you mean model=tiny-random?"),
    ("sft train.learning_rate=1e-4", "did you mean 'train.lr'?"),
    ("sft learning_rate=1e-4", "did you mean 'train.lr'?"),
    ("sft train.gradient_accumulation_steps=4", "did you mean 'train.grad_accum'?"),
    ("sft num_train_epochs=3", "did you mean 'train.epochs'?"),
    ("sft per_device_train_batch_size=8", "did you mean 'train.batch_size'?"),
    ("sft lora_alpha=16", "did you mean 'lora.alpha'?"),
    ("sft trian.lr=1e-4", "did you mean 'train.lr'?"),
    ("sft train.max_step=1", "did you mean 'train.max_steps'?"),
    ("dpo --learning-rate 1e-4", "did you mean train.lr=1e-4?"),
    ("grpo num_generations=4", "did you mean 'grpo.group_size'?"),
    ("sft tiny-random", "unexpected word 'tiny-random'"),
    ("sft train.lr 1e-4", "did you mean train.lr=1e-4?"),
    ("lint d.jsonl --modle x", "unknown option '--modle' (did you mean --model?)"),
    ("probe --prbes hello", "did you mean --probes?"),
    ("report a --lables x", "did you mean --labels?"),
    ("synth distill model tiny-random", "did you mean generator.model=tiny-random?"),
    # Values of the wrong type or out of range.
    ("sft train.lr=fast", "train.lr: Input should be a valid number"),
    ("sft train.lr=-1", "train.lr: Input should be greater than 0"),
    ("sft train.max_steps=0", "train.max_steps"),
    ("sft train.batch_size=two", "train.batch_size"),
    ("sft lora.r=0", "lora.r"),
    ("sft finetune=qlora2", "finetune"),
    ("sft train.schedule=exp", "train.schedule"),
    ("sft data.max_length=4", "data.max_length"),
    ("dpo loss=foo", "loss"),
    ("dpo beta=0", "beta"),
    ("rm train.batch_size=0", "train.batch_size"),
    ("ppo rollout.temperature=hot", "rollout.temperature"),
    ("probe probes=hello,nonsense", "probes"),
    ("dedup d.jsonl --rouge-l 2", "rouge_l"),
    # Devices this machine does not have.
    ("sft device=gpu", "device"),
    ("sft device=cuda:7 data.train=d.jsonl", "device"),
    ("generate device=mps hi", "device"),
    # Files that are missing or broken.
    ("sft --config missing.yaml", "missing.yaml: file not found"),
    ("sft --config broken.yaml", "broken.yaml:3: invalid YAML"),
    ("sft --config typo.yaml", "typo.yaml:2: train.lrr: unknown key (did you mean 'train.lr'?)"),
    ("sft data.train=missing.jsonl", "missing.jsonl: data.train: not found"),
    ("lint missing.jsonl model=tiny-random", "missing.jsonl"),
    ("run missing.yaml", "missing.yaml: file not found"),
    # Words in the wrong place.
    ("run pipe.yaml other.yaml", "expected one pipeline, got 2"),
    ("dedup a.jsonl b.jsonl", "expected one path, got 2"),
    ("generate model=tiny-random 'what is x=3 times 2?'", "a prompt containing '=' goes in a prompts file"),
    ("generate model=tiny-random 2+2=4?", "a prompt containing '=' goes in a prompts file"),
    # Pipelines: checked before any stage runs.
    ("run pipe.yaml sft.train.max_step=1", "sft.train.max_step: unknown key (did you mean 'train.max_steps'?)"),
    ("run pipe.yaml --from nostage", "--from 'nostage': no such stage"),
    ("run pipe.yaml nostage.lr=1", "expected <stage>.<key>=value with a stage of this pipeline"),
    # Run folders: one run each.
    ("sft data.train=d.jsonl out=done train.lr=0.5", "holds an alignkit sft run with train.lr=0.0002"),
    ("sft data.train=d.jsonl out=done lora.r=4", "lora.r=16, this one has lora.r=4"),
    ("dpo data.train=pairs.jsonl out=done", "holds an alignkit sft run, not dpo"),
    # Commands missing what they need.
    ("report", "expected at least one run folder"),
    ("run", "expected a pipeline file"),
]


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    Path("d.jsonl").write_text(json.dumps(RECORD) + "\n")
    Path("pairs.jsonl").write_text(json.dumps(PAIR) + "\n")
    Path("broken.yaml").write_text("train:\n  lr: [1e-4\n")
    Path("typo.yaml").write_text("train:\n  lrr: 1e-4\n")
    Path("pipe.yaml").write_text(PIPELINE)
    Path("other.yaml").write_text(PIPELINE)
    # A finished sft run (the record a completed run leaves; the weights do not matter here).
    claimed = run_folder.claim("sft", load_config(SFTConfig, None, ["out=done", "data.train=d.jsonl"]))
    run_folder.finish(claimed, output="done/adapter", outputs={})
    return tmp_path


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>" for p in sorted(folder.rglob("*"))}


def test_the_table_is_large_enough() -> None:
    assert len(MISTAKES) >= 40


@pytest.mark.parametrize(("line", "expected"), MISTAKES, ids=[line for line, _ in MISTAKES])
def test_a_mistake_is_one_line_and_exit_2_and_writes_nothing(workdir: Path, line: str, expected: str) -> None:
    before = tree(workdir)
    result = CliRunner().invoke(app, shlex.split(line))
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0], lines[0]
    assert result.stdout == "", "nothing besides the error line"
    assert tree(workdir) == before, "nothing written"
