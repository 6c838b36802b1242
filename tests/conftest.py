"""Shared fixtures: the embedded tokenizer and a seeded tiny random Llama (fast, CPU)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tokenizer():
    from alignkit.models.loader import load_tokenizer

    return load_tokenizer("embedded")


@pytest.fixture()
def tiny_model():
    """A fresh seeded 2-layer random Llama (hidden 64) with the embedded tokenizer."""
    from alignkit.models.loader import load_model

    return load_model("tiny-random", device="cpu", seed=0)


def pytest_collection_modifyitems(config, items):
    import torch

    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
