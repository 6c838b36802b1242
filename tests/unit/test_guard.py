"""Guardrails: a classifier trained on a tiny labelled set separates it, survives save/load without
pickle, is refused under another scikit-learn version; rules and verdicts; bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("sklearn")
pytest.importorskip("vaderSentiment")

from alignkit.errors import AlignkitError, DataError  # noqa: E402
from alignkit.guard.checks import Guard, answer_support  # noqa: E402
from alignkit.guard.classifier import (  # noqa: E402
    TextClassifier,
    _binary_scores,
    best_threshold,
    decide,
    read_labelled,
    train_classifier,
)
from alignkit.guard.probe import run_guard_probe  # noqa: E402

INTENTS = {
    "battery": [
        "how do I charge the lock",
        "battery is low",
        "charging takes how long",
        "battery drains fast",
        "charge my lock please",
        "what charger for the battery",
    ],
    "shipping": [
        "do you ship to spain",
        "shipping cost to canada",
        "how long is delivery",
        "express shipping",
        "free delivery threshold",
        "ship my order abroad",
    ],
    "out_of_scope": [
        "write a poem about cats",
        "weather tomorrow in paris",
        "cook pasta recipe",
        "who won the football",
        "tell me a joke",
        "capital of peru",
    ],
}
TOXIC = [
    "you stupid idiot",
    "shut up moron",
    "you are a useless idiot",
    "go away you moron",
    "idiot bot",
    "stupid moron company",
]
BENIGN = [
    "how do I charge the lock",
    "do you ship to spain",
    "kill the app process",
    "my lock died",
    "battery is dead",
    "the alarm is killing my ears",
    "great lock, thanks",
    "where is my order",
]


def _texts_labels(groups):
    texts = [t for label, items in groups.items() for t in items]
    labels = [label for label, items in groups.items() for _ in items]
    return texts, labels


@pytest.fixture(scope="module")
def intent_classifier():
    texts, labels = _texts_labels(INTENTS)
    return train_classifier(texts, labels, cv_folds=3, in_scope_reject_rate=0.0)


@pytest.fixture(scope="module")
def toxicity_classifier():
    texts, labels = _texts_labels({"toxic": TOXIC, "benign": BENIGN})
    return train_classifier(texts, labels, cv_folds=3, out_of_scope_label=None, positive_label="toxic")


def test_a_guard_trained_on_a_tiny_set_separates_it(intent_classifier, toxicity_classifier):
    texts, labels = _texts_labels(INTENTS)
    probs = intent_classifier.predict_proba(texts)
    assert [intent_classifier.classes[i] for i in probs.argmax(axis=1)] == labels
    assert intent_classifier.top("charging the battery")[0] == "battery"
    assert intent_classifier.threshold is not None  # calibrated: in-scope CV confidences' minimum (rate 0)
    assert toxicity_classifier.probability("you useless moron", "toxic") > 0.5
    assert toxicity_classifier.probability("how do I charge the lock", "toxic") < 0.5
    report = intent_classifier.report
    assert report["examples"] == 18 and set(report["classes"]) == set(INTENTS)


def test_saved_without_pickle_and_reloaded_identically(tmp_path, intent_classifier):
    intent_classifier.save(tmp_path / "clf")
    assert (tmp_path / "clf" / "manifest.json").is_file()
    np.load(tmp_path / "clf" / "weights.npz", allow_pickle=False)  # raises if anything is pickled
    loaded = TextClassifier.load(tmp_path / "clf")
    probe = ["charge it", "ship to norway", "sing me a song"]
    np.testing.assert_allclose(
        loaded.predict_proba(probe), intent_classifier.predict_proba(probe), rtol=1e-12
    )
    assert loaded.threshold == intent_classifier.threshold and loaded.classes == intent_classifier.classes


def test_a_classifier_saved_under_another_sklearn_version_is_refused(tmp_path, intent_classifier):
    from alignkit.io import write_manifest

    intent_classifier.save(tmp_path / "clf")
    meta_path = tmp_path / "clf" / "classifier.json"
    meta = json.loads(meta_path.read_text())
    meta["sklearn_version"] = "0.24.2"
    meta_path.write_text(json.dumps(meta))
    write_manifest(
        tmp_path / "clf", {"kind": "guard_classifier"}
    )  # a consistent folder, only the version differs
    with pytest.raises(DataError, match=r"classifier.json: sklearn_version: saved with scikit-learn 0.24.2"):
        TextClassifier.load(tmp_path / "clf")


def test_a_tampered_classifier_is_refused(tmp_path, intent_classifier):
    intent_classifier.save(tmp_path / "clf")
    (tmp_path / "clf" / "weights.npz").write_bytes(b"not the weights")
    with pytest.raises(DataError, match="changed since it was written"):
        TextClassifier.load(tmp_path / "clf")


def test_decide_applies_the_out_of_scope_threshold():
    probs = np.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25]])
    assert decide(["a", "b", "oos"], probs, 0.5, "oos") == ["a", "oos"]
    assert decide(["a", "b", "oos"], probs, None, "oos") == ["a", "a"]


def test_binary_threshold_by_hand():
    labels = ["t", "t", "t", "b", "b", "b", "b"]
    scores = np.array([0.9, 0.6, 0.3, 0.5, 0.2, 0.1, 0.05])
    # At 0.6: tp=2, fp=0 -> P=1, R=2/3, F1=0.8, FPR 0. At 0.5: fp=1 -> FPR .25 > .2: stop.
    assert best_threshold(labels, scores, "t", 0.2) == pytest.approx(0.6)
    # Allowing 0.25 FPR: at 0.3 tp=3 fp=1 -> P=.75 R=1 F1=.857 beats 0.8.
    assert best_threshold(labels, scores, "t", 0.25) == pytest.approx(0.3)
    figures = _binary_scores(labels, scores, "t", 0.3)
    assert figures["f1"] == pytest.approx(6 / 7, abs=1e-4) and figures["false_positive_rate"] == 0.25


def test_answer_support_counts_content_words():
    # content words: halo, costs, $69 -> "69"; context has halo, costs, 69 but not "59".
    assert answer_support("The Halo costs $69.", "The Ferrox Halo costs $69.") == 1.0
    assert answer_support("The Halo costs $59.", "The Ferrox Halo costs $69.") == pytest.approx(2 / 3)
    assert answer_support("Yes.", "anything") == 1.0


def _guard_file(tmp_path: Path, intent_classifier, toxicity_classifier, **extra) -> Path:
    intent_classifier.save(tmp_path / "intent")
    toxicity_classifier.save(tmp_path / "tox")
    spec = {
        "refusal": "No.",
        "input": [
            {"name": "toxic", "check": "toxicity", "classifier": "tox", "label": "toxic"},
            {"name": "scope", "check": "intent", "classifier": "intent", "threshold": 0.0},
        ],
        "output": [
            {"name": "mood", "check": "sentiment", "threshold": -0.5, "action": "flag"},
            {"name": "grounded", "check": "grounding", "threshold": 0.5, "action": "block"},
        ],
        **extra,
    }
    path = tmp_path / "guard.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_guard_file_verdicts(tmp_path, intent_classifier, toxicity_classifier):
    guard = Guard.from_file(
        _guard_file(tmp_path, intent_classifier, toxicity_classifier)
    )  # paths relative to it
    ok = guard.check_prompt("how do I charge the lock")
    assert not ok.blocked and [r.name for r in ok.results] == ["toxic", "scope"]
    rude = guard.check_prompt("shut up you stupid moron")
    assert rude.blocked and rude.rule == "toxic" and rude.refusal == "No."
    off = guard.check_prompt("tell me a joke about the weather")
    assert off.blocked and off.rule == "scope" and "out_of_scope" in off.results[1].detail
    flagged = guard.check_answer("This is terrible, awful and I hate it.", context="terrible awful hate")
    assert not flagged.blocked and flagged.flagged == ["mood"]
    # content words halo, costs, 59, bright, red: 2 of 5 in the context -> 0.4 < 0.5
    ungrounded = guard.check_answer("The Halo costs $59 in bright red.", context="The Halo costs $69.")
    assert ungrounded.blocked and ungrounded.rule == "grounded"
    assert not guard.check_answer("The Halo costs $59 in red.").blocked  # no context: grounding skipped
    result = run_guard_probe(
        guard, ["shut up moron", "write a poem about cats"], ["how do I charge the lock"]
    )
    assert result["block_rate"]["overall"] == 1.0 and result["over_block_rate"]["overall"] == 0.0
    assert set(result["p95_ms"]["per_rule"]) == {"toxic", "scope"}


def test_guard_file_errors(tmp_path, intent_classifier, toxicity_classifier):
    path = _guard_file(tmp_path, intent_classifier, toxicity_classifier)
    spec = yaml.safe_load(path.read_text())
    spec["input"][0]["label"] = "rude"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(AlignkitError, match="label 'rude' is not a class"):
        Guard.from_file(path)
    spec["input"][0]["label"] = "toxic"
    spec["input"].append({"name": "g", "check": "grounding"})
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(AlignkitError, match="list it under output"):
        Guard.from_file(path)


def test_bad_labelled_data_gives_one_line_errors(tmp_path):
    one_class = tmp_path / "one.jsonl"
    one_class.write_text("".join(json.dumps({"text": f"t{i}", "label": "a"}) + "\n" for i in range(6)))
    texts, labels, _ = read_labelled(one_class)
    with pytest.raises(DataError, match="at least two classes"):
        train_classifier(texts, labels, source=str(one_class))
    missing = tmp_path / "missing.jsonl"
    missing.write_text('{"text": "a", "label": "x"}\n{"text": "b"}\n')
    with pytest.raises(DataError, match=r"missing.jsonl:2: label: missing field"):
        read_labelled(missing)
    with pytest.raises(DataError, match="fewer than cv_folds"):
        train_classifier(["a", "b", "c", "d", "e", "f"], ["x", "x", "x", "x", "y", "y"], cv_folds=3)


def test_cli_train_and_check(tmp_path):
    from typer.testing import CliRunner

    from alignkit.cli import app

    data = tmp_path / "tox.jsonl"
    rows = [{"text": t, "label": "toxic"} for t in TOXIC] + [{"text": t, "label": "benign"} for t in BENIGN]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "guard",
            "train",
            str(data),
            "--out",
            str(tmp_path / "clf"),
            "cv_folds=3",
            "out_of_scope_label=null",
            "positive_label=toxic",
        ],
    )
    assert result.exit_code == 0, result.output
    (tmp_path / "g.yaml").write_text(
        yaml.safe_dump(
            {"input": [{"name": "toxic", "check": "toxicity", "classifier": str(tmp_path / "clf")}]}
        )
    )
    result = runner.invoke(app, ["guard", "check", "--guard", str(tmp_path / "g.yaml"), "you stupid moron"])
    assert result.exit_code == 1 and "BLOCK" in result.output
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"text": "caf\xe9", "label": "a"}\n')
    result = runner.invoke(app, ["guard", "train", str(bad), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "bad.jsonl:1" in result.output and "Traceback" not in result.output
