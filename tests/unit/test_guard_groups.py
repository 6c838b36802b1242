"""Cross-validation by group: where records are fillings of templates, folds by record put a
record's near-twins in training and flatter the figures (and the out-of-scope threshold); folds by
group do not. The ``group`` field is all or nothing, and every class needs cv_folds groups."""

from __future__ import annotations

import json
import random
from collections import defaultdict

import numpy as np
import pytest

pytest.importorskip("sklearn")

from alignkit.errors import DataError  # noqa: E402
from alignkit.guard.classifier import cv_splits, read_labelled, train_classifier  # noqa: E402

CLASSES = ("battery", "shipping", "out_of_scope")
GROUPS_PER_CLASS = 10
FILLS = ("Link", "Coil", "Halo", "Tag")


def _word(rng: random.Random) -> str:
    return "".join(rng.choice("bcdfghjklmnpqrstvwxz") + rng.choice("aeiou") for _ in range(3))


def _templated(seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    """Each group: one template of three made-up words, filled with each of ``FILLS``. The words of
    a template say nothing about its class (classes draw from the same generator, the fills are
    shared), so only a seen twin gives a record's class away."""
    rng = random.Random(seed)
    texts, labels, groups = [], [], []
    for label in CLASSES:
        for g in range(GROUPS_PER_CLASS):
            template = " ".join(_word(rng) for _ in range(3)) + " {p}"
            for fill in FILLS:
                texts.append(template.format(p=fill))
                labels.append(label)
                groups.append(f"{label}:{g}")
    return texts, labels, groups


@pytest.fixture(scope="module")
def by_record_and_group():
    texts, labels, groups = _templated()
    options = {"cv_folds": 5, "in_scope_reject_rate": 0.05, "c": 10.0}
    by_record = train_classifier(texts, labels, **options)
    by_group = train_classifier(texts, labels, groups=groups, **options)
    return by_record, by_group


def test_record_folds_are_optimistic_and_group_folds_are_not(by_record_and_group):
    by_record, by_group = by_record_and_group
    assert by_record.report["cv"] == "by record" and "groups" not in by_record.report
    assert by_group.report["cv"] == "by group" and by_group.report["groups"] == 3 * GROUPS_PER_CLASS
    record_accuracy = by_record.report["cross_validated"]["accuracy"]
    group_accuracy = by_group.report["cross_validated"]["accuracy"]
    # by record, 3 of a record's 4 twins are (mostly) in training: it is all but memorised;
    # by group, a template is unseen and its words carry no class: about chance (1/3)
    assert record_accuracy >= 0.9
    assert group_accuracy <= 0.6
    # the confidence threshold (5% quantile of in-scope CV confidence) follows: by record it sits
    # where memorised twins are, by group it is far lower
    assert by_record.threshold is not None and by_group.threshold is not None
    assert by_group.threshold < by_record.threshold - 0.2
    # the final model is fitted on every record either way: the same model
    probe = ["zzz unseen words Link", "kabodu fesiga Coil"]
    assert np.allclose(by_record.predict_proba(probe), by_group.predict_proba(probe))


def test_a_group_never_lands_in_two_folds():
    texts, labels, groups = _templated(seed=1)
    splits = cv_splits(labels, groups, 5, seed=0)
    fold_of: dict[str, set[int]] = defaultdict(set)
    tested = np.zeros(len(texts), dtype=int)
    for k, (train_rows, test_rows) in enumerate(splits):
        assert not set(train_rows) & set(test_rows)
        tested[test_rows] += 1
        for row in test_rows:
            fold_of[groups[row]].add(k)
        # every class is in every fold's test part (stratified by group)
        assert {labels[row] for row in test_rows} == set(CLASSES)
    assert (tested == 1).all()  # every record is tested exactly once
    assert all(len(folds) == 1 for folds in fold_of.values())
    # by record, the same data splits groups across folds (which is what the group folds prevent)
    record_fold_of: dict[str, set[int]] = defaultdict(set)
    for k, (_, test_rows) in enumerate(cv_splits(labels, None, 5, seed=0)):
        for row in test_rows:
            record_fold_of[groups[row]].add(k)
    assert sum(len(folds) > 1 for folds in record_fold_of.values()) > GROUPS_PER_CLASS


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_read_labelled_returns_groups_all_or_nothing(tmp_path):
    with_groups = _write(
        tmp_path / "g.jsonl",
        [{"text": f"t{i}", "label": "ab"[i % 2], "group": f"g{i // 2}"} for i in range(4)],
    )
    assert read_labelled(with_groups).groups == ["g0", "g0", "g1", "g1"]
    without = _write(tmp_path / "n.jsonl", [{"text": f"t{i}", "label": "ab"[i % 2]} for i in range(4)])
    texts, labels, groups = read_labelled(without)
    assert (texts, labels, groups) == (["t0", "t1", "t2", "t3"], ["a", "b", "a", "b"], None)

    missing = _write(
        tmp_path / "mixed.jsonl",
        [
            {"text": "a", "label": "x", "group": "1"},
            {"text": "b", "label": "y", "group": "2"},
            {"text": "c", "label": "x"},
        ],
    )
    with pytest.raises(DataError, match=r"^\S*mixed.jsonl:3: group: missing field \(line 1 has one"):
        read_labelled(missing)
    extra = _write(
        tmp_path / "late.jsonl",
        [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}, {"text": "c", "label": "x", "group": "1"}],
    )
    with pytest.raises(DataError, match=r"^\S*late.jsonl:3: group: unexpected field \(line 1 has none"):
        read_labelled(extra)
    empty = _write(
        tmp_path / "empty.jsonl",
        [{"text": "a", "label": "x", "group": "1"}, {"text": "b", "label": "y", "group": ""}],
    )
    with pytest.raises(DataError, match=r"empty.jsonl:2: group: expected a non-empty string"):
        read_labelled(empty)


def test_too_few_groups_of_a_class_is_an_error():
    texts = [f"text {i}" for i in range(12)]
    labels = ["a"] * 6 + ["b"] * 6
    groups = [f"a{i}" for i in range(6)] + ["b0", "b0", "b0", "b1", "b1", "b2"]  # b: 3 groups
    with pytest.raises(
        DataError, match=r"class 'b' has records in 3 groups, fewer than cv_folds=4: .*at least 4 groups"
    ):
        train_classifier(texts, labels, groups=groups, cv_folds=4, out_of_scope_label=None)
    # three folds are enough for three groups
    report = train_classifier(texts, labels, groups=groups, cv_folds=3, out_of_scope_label=None).report
    assert report["cv"] == "by group" and report["groups"] == 9
    with pytest.raises(DataError, match="11 groups for 12 records"):
        train_classifier(texts, labels, groups=groups[:-1], cv_folds=3, out_of_scope_label=None)


def test_cli_reports_how_it_cross_validated_and_refuses_mixed_groups(tmp_path):
    from typer.testing import CliRunner

    from alignkit.cli import app

    texts, labels, groups = _templated(seed=2)
    rows = [{"text": t, "label": y, "group": g} for t, y, g in zip(texts, labels, groups, strict=True)]
    data = _write(tmp_path / "train.jsonl", rows)
    runner = CliRunner()
    result = runner.invoke(app, ["guard", "train", str(data), "--out", str(tmp_path / "clf"), "cv_folds=3"])
    assert result.exit_code == 0, result.output
    assert f"by group, {3 * GROUPS_PER_CLASS} groups" in result.output
    report = json.loads((tmp_path / "clf" / "report.json").read_text(encoding="utf-8"))
    assert report["cv"] == "by group" and report["cv_folds"] == 3

    del rows[5]["group"]
    bad = _write(tmp_path / "bad.jsonl", rows)
    result = runner.invoke(app, ["guard", "train", str(bad), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2, result.output
    assert "bad.jsonl:6: group: missing field" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x").exists()
