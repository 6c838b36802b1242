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


@pytest.fixture(scope="module")
def tiny_base():
    """``tiny_model`` built once per test module: tests that change its weights deep-copy them."""
    from alignkit.models.loader import load_model

    return load_model("tiny-random", device="cpu", seed=0)


@pytest.fixture()
def one_thread():
    """Torch on one thread for the test, restored after it.

    Small models on a busy 2-core CPU: OpenMP threads cost more than they save (training tiny
    matrices about 5x slower, decoding the embedded model about 2x). A module turns it on with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items):
    import torch

    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
