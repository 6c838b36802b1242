"""An adapter knows its base: recorded portably, used when no model is given, a mismatch is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alignkit.cli import app
from alignkit.config.base import load_config
from alignkit.config.commands import GenerateConfig
from alignkit.config.common import adapter_base, portable_spec
from alignkit.config.training import LoraSection
from alignkit.errors import ModelError
from alignkit.models.adapters import apply_lora, save_trained_model
from alignkit.models.loader import load_model, tiny_random_config


@pytest.fixture(scope="module")
def adapter(tmp_path_factory) -> Path:
    loaded = load_model("tiny-random", device="cpu", seed=0)
    folder = tmp_path_factory.mktemp("run") / "adapter"
    save_trained_model(apply_lora(loaded.model, LoraSection(r=2)), loaded.tokenizer, folder)
    return folder


@pytest.fixture(scope="module")
def other_base(tmp_path_factory) -> Path:
    """A model folder of another shape (hidden size 32, not 64)."""
    from transformers import AutoModelForCausalLM

    config = tiny_random_config()
    config.hidden_size, config.intermediate_size = 32, 64
    folder = tmp_path_factory.mktemp("other") / "model"
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    load_model("tiny-random", device="cpu").tokenizer.save_pretrained(folder)
    return folder


def test_the_adapter_records_its_base_as_a_portable_spec(adapter: Path, other_base: Path, monkeypatch) -> None:
    recorded = json.loads((adapter / "adapter_config.json").read_text())
    assert recorded["base_model_name_or_path"] == "tiny-random"
    assert adapter_base(str(adapter)) == "tiny-random"
    monkeypatch.chdir(other_base.parent)
    assert portable_spec("model") == str(other_base), "a relative folder is recorded absolute"
    assert portable_spec("embedded") == "embedded"


def test_without_a_model_the_adapters_base_is_used(adapter: Path) -> None:
    assert load_config(GenerateConfig, None, [f"adapter={adapter}"]).model == "tiny-random"
    assert load_config(GenerateConfig, None, [f"adapter={adapter}", "model=embedded"]).model == "embedded"
    assert load_config(GenerateConfig, None, []).model == "embedded", "no adapter: the default"


def test_an_adapter_on_the_wrong_base_is_one_line(adapter: Path, other_base: Path, tmp_path: Path,
                                                   monkeypatch) -> None:
    with pytest.raises(ModelError) as caught:
        load_model(str(other_base), adapter=str(adapter), device="cpu")
    line = caught.value.one_line()
    assert line.startswith(f"adapter: {adapter} was trained on tiny-random, not {other_base} (")
    assert "leave model= unset" in line
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["generate", "--adapter", str(adapter), "--model", str(other_base), "hi"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: adapter: ") and "was trained on tiny-random" in errors[0]
    others = [line for line in result.stderr.splitlines() if not line.startswith("error:")]
    assert all(line.startswith(("loading model ", "loaded model ")) for line in others), "besides the error, only progress"
