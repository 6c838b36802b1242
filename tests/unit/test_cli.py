"""The command registry and the CLI built from it: every command declared once, stray words refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from alignkit.cli import app
from alignkit.commands import BY_NAME, COMMANDS, OUTPUT_KEY, read_words, valid_keys
from alignkit.config.base import config_to_yaml
from alignkit.pipeline import STAGE_COMMANDS


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # An option spelled like a config key: the override it meant, with its value.
        (["sft", "--model", "tiny-random"], "unknown option '--model' (did you mean model=tiny-random?)"),
        (["dpo", "--train.lr=1e-4"], "(did you mean train.lr=1e-4?)"),
        (["ppo", "--output-dir", "runs/x"], "(did you mean out=runs/x?)"),
        # Old and borrowed spellings of the one output key.
        (["sft", "output_dir=runs/x"], "unknown key (did you mean 'out'?)"),
        (["lint", "d.jsonl", "json_out=x.json"], "unknown key (did you mean 'out'?)"),
        # A dotted key without "=": the override it meant.
        (["dpo", "train.lr", "1e-4"], "unexpected word 'train.lr' (did you mean train.lr=1e-4?)"),
        (["lint", "data.max_length", "64"], "(did you mean data.max_length=64?)"),
        (["synth", "distill", "model", "tiny-random"], "(did you mean generator.model=tiny-random?)"),
        # An unknown option: the closest valid one.
        (["probe", "--prbes", "hello"], "unknown option '--prbes' (did you mean --probes?)"),
        (["report", "a", "--lables", "x"], "(did you mean --labels?)"),
        (["rm", "--print-confg"], "(did you mean --print-config?)"),
        # A word a command without positional arguments cannot place.
        (["sft", "tiny-random"], "unexpected word 'tiny-random': alignkit sft takes key=value overrides"),
        (["run", "a.yaml", "b.yaml"], "expected one pipeline, got 2"),
        (["dedup", "a.jsonl", "b.jsonl"], "expected one path, got 2"),
    ],
)
def test_a_word_the_command_does_not_understand_is_an_error(tmp_path: Path, monkeypatch, args, expected) -> None:
    monkeypatch.chdir(tmp_path)
    line = one_error_line(invoke(*args))
    assert expected in line, line
    assert not any(tmp_path.iterdir()), "nothing ran"


def test_without_a_value_the_suggestion_says_value() -> None:
    line = one_error_line(invoke("sft", "--model"))
    assert "(did you mean model=VALUE?)" in line


def test_a_value_with_spaces_is_quoted_in_the_suggestion() -> None:
    line = one_error_line(invoke("generate", "--system", "You are a bot"))
    assert "(did you mean system=\"You are a bot\"?)" in line


def test_negative_numbers_and_dashes_are_values_not_options() -> None:
    positional, overrides = read_words(BY_NAME["generate"], ["-1", "hello", "train=-0.5"])
    assert positional == ["-1", "hello"] and overrides == ["train=-0.5"]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_every_command_takes_config_and_print_config(tmp_path: Path, command) -> None:
    """``--config FILE --print-config`` prints the config the file and the defaults resolve to."""
    defaults = command.config()
    key = next(k for k in valid_keys(command.config) if "." not in k)
    config_file = tmp_path / "c.yaml"
    config_file.write_text(yaml.safe_dump({key: getattr(defaults, key)}))
    result = invoke(*command.name.split(), "--config", str(config_file), "--print-config")
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout) == yaml.safe_load(config_to_yaml(defaults))


def test_print_config_shows_positional_words_and_flags() -> None:
    result = invoke("report", "a", "b", "--labels", "x,y", "--out", "r.html", "--print-config")
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout) == {"runs": ["a", "b"], "out": "r.html", "labels": ["x", "y"]}
    result = invoke("run", "p.yaml", "sft.train.lr=0.1", "--from", "sft", "--dry-run", "--print-config")
    assert yaml.safe_load(result.stdout) == {"pipeline": "p.yaml", "from_stage": "sft", "only": None,
                                             "overrides": ["sft.train.lr=0.1"], "dry_run": True}
    # A flag wins over the same key given as a word.
    result = invoke("probe", "model=a", "--model", "b", "--print-config")
    assert yaml.safe_load(result.stdout)["model"] == "b"


def _typer_commands() -> dict[str, Any]:
    """``{"sft": its click command, "synth distill": ..., ...}`` as typer built them."""
    names: dict[str, Any] = {}
    for name, command in typer.main.get_command(app).commands.items():  # type: ignore[attr-defined]
        if hasattr(command, "commands"):
            names.update({f"{name} {sub}": c for sub, c in command.commands.items()})
        else:
            names[name] = command
    return names


def test_the_cli_and_the_pipeline_are_the_registry() -> None:
    assert len(BY_NAME) == len(COMMANDS)
    assert set(_typer_commands()) == set(BY_NAME)
    assert set(STAGE_COMMANDS) == {c.name for c in COMMANDS if c.stage is not None}
    for command in COMMANDS:
        assert callable(command.run_function()), command.name
        keys = set(valid_keys(command.config))
        for flag in command.flags:
            assert flag.config_key in keys, (command.name, flag.option)
        for field in (command.positional, command.words_field, command.stage and OUTPUT_KEY):
            assert not field or field in keys, (command.name, field)
        options = {o for p in _typer_commands()[command.name].params for o in getattr(p, "opts", [])}
        assert {"--config", "--print-config", "--debug"} <= options, command.name


def test_every_command_writes_to_one_key_named_out() -> None:
    """``out`` everywhere, and ``--out`` where the command has flags: no output_dir / json_out / output."""
    for command in COMMANDS:
        fields = set(command.config.model_fields)
        assert not fields & {"output_dir", "json_out", "output"}, command.name
        if command.stage is not None:
            assert OUTPUT_KEY == "out" and OUTPUT_KEY in fields, command.name
            assert "--out" in {flag.option for flag in command.flags}, command.name


@pytest.mark.parametrize("command", [c for c in COMMANDS if " " not in c.name], ids=lambda c: c.name)
def test_help_lists_every_config_key_with_type_default_and_description(command) -> None:
    from alignkit.config.base import config_reference

    result = CliRunner().invoke(app, [command.name, "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0
    listed = {line.split()[0]: line for line in result.stdout.splitlines()[1:] if line.strip()}
    for key, kind, default, description in config_reference(command.config):
        line = listed.get(key)
        assert line is not None, f"{command.name} --help does not list {key}"
        assert f"{kind} = {json.dumps(default)}" in line, line
        assert description.split(" (")[0][:30] in line, line


def test_help_shows_a_key_as_the_user_writes_it() -> None:
    result = CliRunner().invoke(app, ["dpo", "--help"], env={"COLUMNS": "250"})
    line = next(line for line in result.stdout.splitlines() if line.strip().startswith("train.lr "))
    assert line.split() == ["train.lr", "float", "=", "2e-05", "peak", "learning", "rate", "(after", "warmup)"]
    result = CliRunner().invoke(app, ["sft", "--help"], env={"COLUMNS": "250"})
    line = next(line for line in result.stdout.splitlines() if line.strip().startswith("train.lr "))
    assert line.split()[:4] == ["train.lr", "float", "=", "0.0002"], "sft's LoRA default"
    assert "lora.target_modules            list[str]|str = \"all-linear\"" in result.stdout


def test_print_config_comments_each_key_and_loads_back(tmp_path: Path) -> None:
    from alignkit.config.recipes import SFTConfig

    result = invoke("sft", "train.lr=1e-4", "lora.target_modules=q_proj,v_proj", "--print-config")
    assert result.exit_code == 0
    assert "  lr: 0.0001  # float: peak learning rate (after warmup)" in result.stdout
    assert "  target_modules: [q_proj, v_proj]  # list[str]|str: module names, or all-linear" in result.stdout
    config_file = tmp_path / "printed.yaml"
    config_file.write_text(result.stdout)
    again = invoke("sft", "--config", str(config_file), "--print-config")
    assert again.stdout == result.stdout
    assert SFTConfig.model_validate(yaml.safe_load(result.stdout)).train.lr == 1e-4


def test_version() -> None:
    from alignkit import __version__

    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout == f"alignkit {__version__}\n"


def test_plain_tqdm_bars_of_third_party_code_stay_off_the_console() -> None:
    # transformers draws the embedded model's GGUF conversion with plain tqdm, which its own
    # disable_progress_bar() does not reach; in a fresh process, as a command runs.
    script = (
        "import typer\n"
        "from alignkit.cli import run_guarded\n"
        "def body():\n"
        "    from tqdm.auto import tqdm\n"
        "    for _ in tqdm(range(3), desc='Converting GGUF tensors'):\n"
        "        pass\n"
        "    return 0\n"
        "try:\n"
        "    run_guarded(False, body)\n"
        "except typer.Exit as done:\n"
        "    raise SystemExit(done.exit_code)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TQDM_DISABLE", "ALIGNKIT_VERBOSE")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Converting" not in result.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, "PASSIVE"), ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE"), ({"ALIGNKIT_NO_THREAD_DEFAULTS": "1"}, None)],
)
def test_threads_sleep_while_waiting_unless_the_user_chose(env, expected) -> None:
    # In a fresh process: the policy must be in the environment before torch (and its OpenMP) loads.
    script = (
        "import json, os, sys\n"
        "import alignkit.cli as cli\n"
        "cli.app = lambda: print(json.dumps([os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules]))\n"
        "cli.main()\n"
    )
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "ALIGNKIT_NO_THREAD_DEFAULTS")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env={**base, **env},
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [expected, False]
