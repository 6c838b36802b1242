"""Config: YAML + ``a.b=value`` overrides, unknown keys with suggestions, errors naming file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from alignkit.cli import app
from alignkit.config.base import config_hash, config_to_yaml, load_config, parse_override
from alignkit.config.commands import GenerateConfig, LintConfig
from alignkit.errors import ConfigError

LINT_YAML = """\
model: tiny-random
paths:
  - a.jsonl
  - b.jsonl
data:
  max_length: 128
  truncation: keep_end
"""


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def config_error(model, path=None, overrides=None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(model, path, overrides)
    return info.value


# --- loading and overrides ----------------------------------------------------------------------


def test_yaml_values_and_defaults(tmp_path):
    cfg = load_config(LintConfig, write(tmp_path, LINT_YAML))
    assert cfg.model == "tiny-random"
    assert cfg.paths == ["a.jsonl", "b.jsonl"]
    assert (cfg.data.max_length, cfg.data.truncation) == (128, "keep_end")
    assert (cfg.data.add_eos, cfg.data.on_bad_record, cfg.dtype) == (True, "error", "auto")  # defaults


def test_dotted_overrides_win_over_yaml_with_type_coercion(tmp_path):
    cfg = load_config(
        LintConfig,
        write(tmp_path, LINT_YAML),
        [
            "data.max_length=64",  # nested, "64" -> int
            "data.add_eos=false",  # -> bool
            "data.eval_fraction=0.25",  # -> float
            "paths=[c.jsonl, d.parquet, e.csv]",  # a list value
            "out=out/lint.json",
        ],
    )
    assert cfg.data.max_length == 64 and isinstance(cfg.data.max_length, int)
    assert cfg.data.add_eos is False
    assert cfg.data.eval_fraction == 0.25
    assert cfg.data.truncation == "keep_end"  # untouched YAML value survives beside the override
    assert cfg.paths == ["c.jsonl", "d.parquet", "e.csv"]
    assert cfg.out == "out/lint.json"


def test_overrides_without_a_file_create_nested_sections():
    cfg = load_config(
        GenerateConfig,
        None,
        [
            "generation.temperature=0.7",
            "generation.top_k=50",
            "generation.stop=['###', '</s>']",
            "prompts=[hello, 'how are you?']",
            "batch_size=2",
        ],
    )
    assert cfg.generation.temperature == 0.7 and cfg.generation.top_k == 50
    assert cfg.generation.stop == ["###", "</s>"]
    assert cfg.prompts == ["hello", "how are you?"]
    assert cfg.batch_size == 2
    assert cfg.generation.top_p == 1.0  # section defaults kept


def test_override_value_keeps_everything_after_the_first_equals_sign():
    assert parse_override("system=a=b") == (["system"], "a=b")
    assert parse_override("output=") == (["output"], "")
    assert parse_override("data.kind=text") == (["data", "kind"], "text")


@pytest.mark.parametrize("text", ["data.max_length", "=3", "data..kind=text", ".kind=text"])
def test_malformed_override(text):
    with pytest.raises(ConfigError) as info:
        parse_override(text)
    assert info.value.source == "<command line>"


def test_defaults_are_merged_under_the_file(tmp_path):
    cfg = load_config(
        LintConfig, write(tmp_path, LINT_YAML), defaults={"data": {"max_length": 16, "kind": "text"}}
    )
    assert (cfg.data.max_length, cfg.data.kind) == (128, "text")


# --- unknown keys -------------------------------------------------------------------------------


def test_unknown_key_in_yaml_suggests_the_closest_and_names_the_line(tmp_path):
    path = write(tmp_path, "model: tiny-random\ndata:\n  kind: messages\n  maxlen: 12\n")
    error = config_error(LintConfig, path)
    assert (error.source, error.line, error.field) == (str(path), 4, "data.maxlen")
    assert error.one_line() == f"{path}:4: data.maxlen: unknown key (did you mean 'data.max_length'?)"


def test_unknown_key_in_an_override_names_the_command_line():
    error = config_error(LintConfig, None, ["data.maxlen=12"])
    assert error.one_line() == "<command line>: data.maxlen: unknown key (did you mean 'data.max_length'?)"


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [("modle", "model"), ("data.truncate", "data.truncation"), ("data.on_bad_records", "data.on_bad_record")],
)
def test_suggestions(key, suggestion):
    error = config_error(LintConfig, None, [f"{key}=x"])
    assert f"did you mean {suggestion!r}" in error.message


def test_no_suggestion_for_a_key_like_nothing():
    error = config_error(LintConfig, None, ["zzzzqqq=1"])
    assert error.message == "unknown key"


# --- type errors --------------------------------------------------------------------------------


def test_type_error_names_yaml_file_and_line_of_the_bad_value(tmp_path):
    path = write(tmp_path, LINT_YAML.replace("truncation: keep_end", "truncation: middle"))
    error = config_error(LintConfig, path)
    assert (error.source, error.line, error.field) == (str(path), 7, "data.truncation")
    assert "'keep_start', 'keep_end', 'drop' or 'error'" in error.message and "'middle'" in error.message


def test_type_error_in_a_list_item_names_its_line(tmp_path):
    path = write(tmp_path, "paths:\n  - a.jsonl\n  - [nested]\n")
    error = config_error(LintConfig, path)
    assert (error.line, error.field) == (3, "paths.1")


def test_bound_error_names_the_line(tmp_path):
    path = write(tmp_path, "data:\n  max_length: 4\n")
    error = config_error(LintConfig, path)
    assert error.one_line() == f"{path}:2: data.max_length: Input should be greater than 8, got 4"


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("data.max_length=abc", "data.max_length"),
        ("data.add_eos=maybe", "data.add_eos"),
        ("paths=[a.jsonl, [b]]", "paths.1"),
        ("data=3", "data"),
    ],
)
def test_override_type_error_names_the_command_line(tmp_path, override, field):
    # The YAML file also sets these keys: the error must blame the override, not a YAML line.
    error = config_error(LintConfig, write(tmp_path, LINT_YAML), [override])
    assert (error.source, error.line, error.field) == ("<command line>", None, field)
    assert error.one_line().startswith(f"<command line>: {field}: ")


# --- bad files ----------------------------------------------------------------------------------


def test_bad_yaml_syntax_names_file_and_line(tmp_path):
    path = write(tmp_path, "model: tiny-random\ndata:\n  max_length: [1\n  kind: text\n")
    error = config_error(LintConfig, path)
    assert (error.source, error.line) == (str(path), 4)
    assert error.message.startswith("invalid YAML")


def test_yaml_that_is_not_a_mapping(tmp_path):
    error = config_error(LintConfig, write(tmp_path, "- a\n- b\n"))
    assert error.line == 1 and "mapping" in error.message


def test_missing_config_file(tmp_path):
    error = config_error(LintConfig, tmp_path / "nope.yaml")
    assert error.one_line() == f"{tmp_path / 'nope.yaml'}: file not found"


def test_empty_yaml_is_all_defaults(tmp_path):
    assert load_config(LintConfig, write(tmp_path, "")) == LintConfig()


# --- resolved config ----------------------------------------------------------------------------


def test_config_round_trips_through_yaml_and_hash_is_stable(tmp_path):
    cfg = load_config(LintConfig, write(tmp_path, LINT_YAML), ["data.max_length=64"])
    again = load_config(LintConfig, write(tmp_path, config_to_yaml(cfg), "resolved.yaml"))
    assert again == cfg
    assert config_hash(again) == config_hash(cfg)
    assert config_hash(load_config(LintConfig, None, ["data.max_length=65"])) != config_hash(cfg)


def test_print_config_prints_resolved_yaml_and_exits_0(tmp_path):
    path = write(tmp_path, LINT_YAML)
    result = CliRunner().invoke(
        app,
        ["lint", "--config", str(path), "--print-config", "data.max_length=64", "data.kind=messages"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.stdout)
    assert printed["model"] == "tiny-random"
    assert printed["paths"] == ["a.jsonl", "b.jsonl"]
    assert printed["data"]["max_length"] == 64 and printed["data"]["kind"] == "messages"
    assert printed["data"]["truncation"] == "keep_end"
    assert printed == LintConfig.model_validate(printed).model_dump(mode="json")  # complete and valid


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["data.maxlen=3"],
            "error: <command line>: data.maxlen: unknown key (did you mean 'data.max_length'?)",
        ),
        (["data.max_length=abc"], "error: <command line>: data.max_length: "),
    ],
)
def test_cli_config_errors_are_one_line(args, expected):
    result = CliRunner().invoke(app, ["lint", "x.jsonl", "model=tiny-random", *args], catch_exceptions=False)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(expected)


def test_cli_yaml_type_error_names_file_and_line(tmp_path):
    path = write(tmp_path, "model: tiny-random\ndata:\n  add_eos: perhaps\n")
    result = CliRunner().invoke(app, ["lint", "x.jsonl", "--config", str(path)], catch_exceptions=False)
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {path}:3: data.add_eos: ")


def test_sft_learning_rate_default_follows_finetune() -> None:
    from alignkit.config.recipes import FULL_SFT_LR, LORA_SFT_LR, SFTConfig

    assert (LORA_SFT_LR, FULL_SFT_LR) == (2e-4, 2e-5)
    assert load_config(SFTConfig, None, []).train.lr == LORA_SFT_LR
    assert load_config(SFTConfig, None, ["finetune=qlora"]).train.lr == LORA_SFT_LR
    assert load_config(SFTConfig, None, ["finetune=full"]).train.lr == FULL_SFT_LR
    assert load_config(SFTConfig, None, ["finetune=full", "train.max_steps=3"]).train.lr == FULL_SFT_LR
    assert load_config(SFTConfig, None, ["train.lr=1e-3"]).train.lr == 1e-3, "a given lr wins"
    assert load_config(SFTConfig, None, ["finetune=full", "train.lr=1e-3"]).train.lr == 1e-3
