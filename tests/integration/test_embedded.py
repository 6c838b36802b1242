"""The embedded model (SmolLM2-135M-Instruct): cached once, never trusted when corrupt, and it stops.

Slow: loads the real 135M model on CPU, and rebuilds one corrupted cache copy (~30 s).
"""

from __future__ import annotations

import json
import shutil

import pytest

import alignkit.models.loader as loader
from alignkit.generation.local import LocalGenerator
from alignkit.generation.types import GenerationParams
from alignkit.io import MANIFEST, first_mismatch, verify_manifest

pytestmark = pytest.mark.integration

IM_END = 2


@pytest.fixture(scope="module")
def embedded():
    """The real model, loaded from the existing cache (built once by the first test run on a machine)."""
    return loader.load_model("embedded", device="cpu", dtype="float32")


def test_loads_from_the_cache_without_rebuilding(monkeypatch, embedded):
    folder = loader.embedded_model_dir()
    manifest = verify_manifest(folder)
    assert manifest is not None and "model.safetensors" in manifest["files"]

    def refuse(_target):
        raise AssertionError("a valid cache must not be rebuilt")

    monkeypatch.setattr(loader, "_build_embedded_cache", refuse)
    assert loader.embedded_model_dir() == folder
    assert embedded.source_dir == folder

    model, tokenizer = embedded.model, embedded.tokenizer
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    assert model.config.num_hidden_layers == 30 and model.config.hidden_size == 576
    assert (tokenizer.eos_token_id, tokenizer.bos_token_id, tokenizer.pad_token_id) == (IM_END, 1, IM_END)
    eos = model.generation_config.eos_token_id
    assert IM_END in (eos if isinstance(eos, list) else [eos])


def test_greedy_reply_to_hello_ends_with_the_end_of_turn_token(embedded):
    generator = LocalGenerator(embedded.model, embedded.tokenizer)
    (replies,) = generator.chat([[{"role": "user", "content": "hello"}]], GenerationParams(max_new_tokens=96))
    (reply,) = replies

    assert reply.stopped and reply.finish_reason == "stop", reply
    assert reply.token_ids[-1] == IM_END
    assert reply.text.strip() and "<|im_end|>" not in reply.text and "<|im_start|>" not in reply.text


def test_a_corrupted_cache_is_detected_and_rebuilt(tmp_path, monkeypatch):
    original = loader.embedded_model_dir()
    monkeypatch.setenv("ALIGNKIT_CACHE", str(tmp_path / "cache"))
    copy = loader._embedded_cache_dir()
    assert copy.parent == tmp_path / "cache" and copy.name == original.name
    shutil.copytree(original, copy)
    assert verify_manifest(copy) is not None

    weights = copy / "model.safetensors"
    with open(weights, "r+b") as handle:  # flip one byte in the middle of the tensors
        handle.seek(weights.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0xFF]))
    assert verify_manifest(copy) is None
    assert first_mismatch(copy) == "model.safetensors does not match its sha256 (corrupt)"

    rebuilt = loader.embedded_model_dir()  # must rebuild (~30 s), not trust the copy
    assert rebuilt == copy
    assert verify_manifest(rebuilt) is not None
    expected = json.loads((original / MANIFEST).read_text())["files"]["model.safetensors"]
    assert json.loads((rebuilt / MANIFEST).read_text())["files"]["model.safetensors"] == expected
    assert not [p for p in copy.parent.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_a_partial_cache_is_not_trusted(tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_text("{}")
    assert verify_manifest(partial) is None
    assert first_mismatch(partial) == "no manifest.json (partial or foreign folder)"
