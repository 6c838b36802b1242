"""A Hugging Face model id that is in the local cache loads offline; any other id is one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from alignkit.errors import ModelError
from alignkit.models.loader import load_model, load_tokenizer


@pytest.fixture()
def hub_cache(tmp_path: Path, monkeypatch) -> Path:
    """A local Hugging Face cache holding ``someone/tiny`` (the tiny random model), laid out as the Hub
    client lays it out: models--someone--tiny/{refs/main, snapshots/<commit>/...}."""
    import huggingface_hub.constants

    commit = "0" * 40
    repo = tmp_path / "models--someone--tiny"
    snapshot = repo / "snapshots" / commit
    loaded = load_model("tiny-random", device="cpu", seed=3)
    loaded.model.save_pretrained(snapshot)
    loaded.tokenizer.save_pretrained(snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


def test_a_cached_model_id_loads_offline(hub_cache: Path) -> None:
    cached = load_model("someone/tiny", device="cpu")
    reference = load_model("tiny-random", device="cpu", seed=3)
    for (name, weight), (_, expected) in zip(cached.model.named_parameters(), reference.model.named_parameters(),
                                             strict=True):
        assert torch.equal(weight, expected), name
    assert cached.model.alignkit_spec == "someone/tiny", "recorded as the id, not the cache path"
    assert load_tokenizer("someone/tiny").eos_token == reference.tokenizer.eos_token


def test_an_id_that_is_not_cached_is_one_line(hub_cache: Path) -> None:
    with pytest.raises(ModelError) as caught:
        load_model("someone/absent", device="cpu")
    assert caught.value.one_line() == (
        "model: someone/absent is not a folder, nor in the local Hugging Face cache; alignkit does not download "
        "weights: fetch it once with `hf download someone/absent`, or give a model folder")
