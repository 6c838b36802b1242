"""A text classifier: TF-IDF of word and character n-grams, then multinomial logistic regression.

Saved without pickle: the two vocabularies and the class list as JSON, idf vectors and the
regression's weights as a ``.npz`` read with ``allow_pickle=False``. The scikit-learn version is
recorded and a mismatch is refused, because tokenisation and n-gram extraction are scikit-learn's
and may change between versions, silently changing the features the weights were fitted on.

Out of scope: an explicit class in the data (``out_of_scope_label``) and a confidence threshold
calibrated on cross-validated probabilities: the ``in_scope_reject_rate`` quantile of the top-class
probability of in-scope examples, so about that share of in-scope prompts is rejected on unseen data.
Cross-validation is by record, or by group where the records carry a ``group`` (e.g. the template a
text was filled from): fillings of one template in several folds make record-level figures, and the
threshold derived from them, optimistic.
A binary check (toxicity) names its ``positive_label``; its threshold is the one with the best
cross-validated F1 among those that flag at most ``max_false_positive_rate`` of the other class.

``dense``: the features also hold the text's sentence embedding from ``dense_encoder``
(``guard.encoders``: e5, a transformer pass of milliseconds per text, or WordLlama's static token
vectors, microseconds), scaled by ``dense_weight``. N-grams only know the words the data has; the
embedding places "my parcel never came" near "where is my package", which is what wording a
template never had needs. The encoder's name, model and version are recorded and a mismatch is
refused, as for scikit-learn.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from alignkit.data.readers import read_records
from alignkit.errors import ConfigError, DataError
from alignkit.guard.encoders import EncoderName, TextEncoder, text_encoder
from alignkit.io import atomic_folder, first_mismatch

FORMAT = 1
REJECT_RATE_QUANTILES = (0.0, 0.01, 0.02, 0.03, 0.05, 0.1)  # reported in_scope_confidence_quantiles


def _sklearn() -> Any:
    try:
        import sklearn
    except ImportError:
        raise ConfigError(
            "guard classifiers need scikit-learn: pip install 'alignkit[guard]'", field="guard"
        ) from None
    return sklearn


def _vectorizers(
    word_ngrams: tuple[int, int], char_ngrams: tuple[int, int], sublinear_tf: bool = True
) -> tuple[Any, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    # sublinear tf: a word said three times is not three times the evidence.
    word = TfidfVectorizer(
        analyzer="word", ngram_range=word_ngrams, sublinear_tf=sublinear_tf, lowercase=True
    )
    char = TfidfVectorizer(
        analyzer="char_wb", ngram_range=char_ngrams, sublinear_tf=sublinear_tf, lowercase=True
    )
    return word, char


def _features(word: Any, char: Any, texts: Sequence[str], dense_rows: np.ndarray | None = None) -> Any:
    """The regression's rows: word and character TF-IDF (each row unit length), then ``dense_rows``
    (already scaled by the dense weight) when given."""
    from scipy.sparse import csr_matrix, hstack

    blocks = [word.transform(texts), char.transform(texts)]
    if dense_rows is not None:
        blocks.append(csr_matrix(dense_rows))
    return hstack(blocks).tocsr()


@dataclass
class TextClassifier:
    """Fitted vectorizers and regression; ``threshold``: minimum top-class probability (None: off)."""

    word: Any
    char: Any
    model: Any
    threshold: float | None = None
    out_of_scope_label: str | None = None
    positive_threshold: float | None = None
    report: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    encoder: TextEncoder | None = None  # when params["dense"]

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.model.classes_]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), num_classes)`` probabilities in ``classes`` order."""
        dense_rows = None
        if self.params.get("dense"):
            assert self.encoder is not None  # load and train_classifier set it with params["dense"]
            dense_rows = self.params["dense_weight"] * self.encoder.queries(texts)
        return np.asarray(self.model.predict_proba(_features(self.word, self.char, texts, dense_rows)))

    def probability(self, text: str, label: str) -> float:
        if label not in self.classes:
            raise ConfigError(
                f"label {label!r} is not a class of this classifier ({', '.join(self.classes)})",
                field="label",
            )
        return float(self.predict_proba([text])[0, self.classes.index(label)])

    def top(self, text: str) -> tuple[str, float]:
        probs = self.predict_proba([text])[0]
        best = int(np.argmax(probs))
        return self.classes[best], float(probs[best])

    def save(self, out: str | Path) -> None:
        sklearn = _sklearn()
        meta = {
            "format": FORMAT,
            "sklearn_version": sklearn.__version__,
            "classes": self.classes,
            "threshold": self.threshold,
            "out_of_scope_label": self.out_of_scope_label,
            "positive_threshold": self.positive_threshold,
            "params": self.params,
            "word_vocabulary": {k: int(v) for k, v in self.word.vocabulary_.items()},
            "char_vocabulary": {k: int(v) for k, v in self.char.vocabulary_.items()},
            "report": self.report,
        }
        with atomic_folder(out, {"kind": "guard_classifier"}) as tmp:
            (tmp / "classifier.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
            np.savez(
                tmp / "weights.npz",
                word_idf=self.word.idf_,
                char_idf=self.char.idf_,
                coef=self.model.coef_,
                intercept=self.model.intercept_,
            )
            (tmp / "report.json").write_text(json.dumps(self.report, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> TextClassifier:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        sklearn = _sklearn()
        folder = Path(folder)
        meta_path = folder / "classifier.json"
        if not meta_path.is_file():
            raise DataError(
                "not a guard classifier folder (no classifier.json): train one with alignkit guard train",
                source=str(folder),
            )
        mismatch = first_mismatch(folder)
        if mismatch is not None:
            raise DataError(f"classifier folder changed since it was written: {mismatch}", source=str(folder))
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("sklearn_version") != sklearn.__version__:
            raise DataError(
                f"saved with scikit-learn {meta.get('sklearn_version')}, this is {sklearn.__version__}: "
                "retrain it (alignkit guard train) with this version",
                source=str(meta_path),
                field="sklearn_version",
            )
        params = meta["params"]
        encoder = None
        if params.get("dense"):
            # classifiers saved before dense_encoder existed used e5
            encoder = text_encoder(params.get("dense_encoder", "e5"))
            if params["dense"] != encoder.version:
                raise DataError(
                    f"trained on embeddings of {params['dense']}, this is {encoder.version}: "
                    "retrain it (alignkit guard train) with this version",
                    source=str(meta_path),
                    field="dense",
                )
        weights = np.load(folder / "weights.npz", allow_pickle=False)
        word = TfidfVectorizer(
            analyzer="word",
            ngram_range=tuple(params["word_ngrams"]),
            sublinear_tf=params.get("sublinear_tf", True),
            lowercase=True,
            vocabulary=meta["word_vocabulary"],
        )
        word.idf_ = weights["word_idf"]
        char = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=tuple(params["char_ngrams"]),
            sublinear_tf=params.get("sublinear_tf", True),
            lowercase=True,
            vocabulary=meta["char_vocabulary"],
        )
        char.idf_ = weights["char_idf"]
        model = LogisticRegression()
        model.classes_ = np.asarray(meta["classes"])
        model.coef_ = weights["coef"]
        model.intercept_ = weights["intercept"]
        return cls(
            word,
            char,
            model,
            meta["threshold"],
            meta["out_of_scope_label"],
            meta["positive_threshold"],
            meta["report"],
            params,
            encoder,
        )


class Labelled(NamedTuple):
    """A labelled file's columns; ``groups`` is None when its records carry no ``group`` field."""

    texts: list[str]
    labels: list[str]
    groups: list[str] | None


def read_labelled(
    path: str | Path, text_field: str = "text", label_field: str = "label", group_field: str = "group"
) -> Labelled:
    """Texts, labels and (optional) groups of a labelled file; a bad record raises DataError naming
    file, line, field. ``group`` (for example the template a text was generated from) is all or
    nothing: a file where some records have one and others do not is refused."""

    texts: list[str] = []
    labels: list[str] = []
    groups: list[str] = []
    first: tuple[str, int, bool] | None = None  # (source, line, has a group) of the first record
    for raw in read_records(path):
        for name in (text_field, label_field):
            value = raw.data.get(name)
            if not isinstance(value, str) or not value.strip():
                problem = "missing field" if name not in raw.data else "expected a non-empty string"
                raise DataError(problem, source=raw.source, line=raw.line, field=name)
        group = raw.data.get(group_field)
        has_group = group is not None
        if first is None:
            first = (raw.source, raw.line, has_group)
        elif has_group != first[2]:
            problem = (
                f"missing field (line {first[1]} has one: give every record a {group_field}, or none)"
                if first[2]
                else f"unexpected field (line {first[1]} has none: give every record a {group_field}, or none)"
            )
            raise DataError(problem, source=raw.source, line=raw.line, field=group_field)
        if has_group:
            if not isinstance(group, str) or not group.strip():
                raise DataError(
                    "expected a non-empty string", source=raw.source, line=raw.line, field=group_field
                )
            groups.append(group)
        texts.append(raw.data[text_field])
        labels.append(raw.data[label_field])
    if not texts:
        raise DataError("no labelled records", source=str(path))
    return Labelled(texts, labels, groups if first is not None and first[2] else None)


def _scores(y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=list(classes), zero_division=0
    )
    return {
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "per_class": {
            c: {
                "precision": round(float(p), 4),
                "recall": round(float(r), 4),
                "f1": round(float(f), 4),
                "support": int(s),
            }
            for c, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
        },
    }


def decide(
    classes: Sequence[str], probs: np.ndarray, threshold: float | None, out_of_scope: str | None
) -> list[str]:
    """Top class per row, or ``out_of_scope`` where the top probability is under ``threshold``."""
    tops = np.argmax(probs, axis=1)
    labels = [classes[i] for i in tops]
    if threshold is None or out_of_scope is None:
        return labels
    return [out_of_scope if probs[row, i] < threshold else labels[row] for row, i in enumerate(tops)]


def train_classifier(
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    word_ngrams: tuple[int, int] = (1, 2),
    char_ngrams: tuple[int, int] = (2, 5),
    c: float = 10.0,
    cv_folds: int = 5,
    seed: int = 0,
    out_of_scope_label: str | None = "out_of_scope",
    in_scope_reject_rate: float = 0.05,
    positive_label: str | None = None,
    max_false_positive_rate: float = 0.05,
    balanced: bool = True,
    sublinear_tf: bool = True,
    dense: bool = False,
    dense_weight: float = 4.0,
    dense_encoder: EncoderName = "e5",
    groups: Sequence[str] | None = None,
    source: str = "<data>",
    encoder_factory: Callable[[], TextEncoder] | None = None,
) -> TextClassifier:
    """Fit on all of ``texts``; report and threshold come from ``cv_folds``-fold cross-validation.

    ``groups`` (one per text, e.g. the template it was generated from): the folds are drawn by group
    (``StratifiedGroupKFold``), so near-twins never sit on both sides of a split; without groups, by
    record (``StratifiedKFold``). ``dense``: embeddings from ``dense_encoder`` (or ``encoder_factory``,
    which tests give) join the features, computed once for every text and sliced per fold (they
    are not fitted)."""
    _sklearn()
    from sklearn.linear_model import LogisticRegression

    counts = Counter(labels)
    if len(counts) < 2:
        raise DataError(
            f"a classifier needs at least two classes; every record is {next(iter(counts))!r}",
            source=source,
            field="label",
        )
    if positive_label is not None and positive_label not in counts:
        raise DataError(
            f"positive_label {positive_label!r} is not a label of the data", source=source, field="label"
        )
    smallest = min(counts.values())
    if smallest < cv_folds:
        rare = min(counts, key=lambda k: counts[k])
        raise DataError(
            f"class {rare!r} has {smallest} examples, fewer than cv_folds={cv_folds}",
            source=source,
            field="label",
        )
    if groups is not None:
        if len(groups) != len(labels):
            raise DataError(
                f"{len(groups)} groups for {len(labels)} records: give one group per record",
                source=source,
                field="group",
            )
        groups_of: dict[str, set[str]] = {}
        for label, group in zip(labels, groups, strict=True):
            groups_of.setdefault(label, set()).add(group)
        rare = min(groups_of, key=lambda k: (len(groups_of[k]), k))
        if len(groups_of[rare]) < cv_folds:
            raise DataError(
                f"class {rare!r} has records in {len(groups_of[rare])} groups, fewer than cv_folds={cv_folds}: "
                f"cross-validation by group needs at least {cv_folds} groups of every class",
                source=source,
                field="group",
            )
    weight = "balanced" if balanced else None
    encoder = None
    if dense:
        encoder = encoder_factory() if encoder_factory is not None else text_encoder(dense_encoder)
    # Scaling the unit-length embedding against the unit-length n-gram blocks sets, at a fixed C, how
    # far the regression may lean on it.
    dense_rows = dense_weight * encoder.queries(texts) if encoder is not None else None
    cv_probs = np.zeros((len(texts), len(counts)))
    classes = sorted(counts)
    text_array = np.asarray(texts, dtype=object)
    label_array = np.asarray(labels, dtype=object)
    for train_rows, test_rows in cv_splits(labels, groups, cv_folds, seed):
        word, char = _vectorizers(word_ngrams, char_ngrams, sublinear_tf)
        fold_model = LogisticRegression(C=c, max_iter=5000, class_weight=weight)
        train_dense = dense_rows[train_rows] if dense_rows is not None else None
        test_dense = dense_rows[test_rows] if dense_rows is not None else None
        fold_model.fit(
            _fit_features(word, char, list(text_array[train_rows]), train_dense),
            list(label_array[train_rows]),
        )
        # a fold's training part may lack a class (group folds are only nearly stratified): its column stays 0
        columns = np.array([classes.index(str(k)) for k in fold_model.classes_])
        cv_probs[np.ix_(test_rows, columns)] = fold_model.predict_proba(
            _features(word, char, list(text_array[test_rows]), test_dense)
        )
    explicit = out_of_scope_label if out_of_scope_label in counts else None
    threshold = None
    if explicit is not None:
        in_scope = np.array([label != explicit for label in labels])
        confidence = cv_probs[in_scope].max(axis=1)
        threshold = float(np.quantile(confidence, in_scope_reject_rate))
    positive_threshold = None
    if positive_label is not None:
        positive_threshold = best_threshold(
            labels, cv_probs[:, classes.index(positive_label)], positive_label, max_false_positive_rate
        )
    cv_pred = decide(classes, cv_probs, None, None)
    report: dict[str, Any] = {
        "examples": len(texts),
        "classes": dict(sorted(counts.items())),
        "cv": "by group" if groups is not None else "by record",
        "cv_folds": cv_folds,
        "dense": encoder.version if encoder is not None else None,
        "cross_validated": _scores(labels, cv_pred, classes),
    }
    if groups is not None:
        report["groups"] = len(set(groups))
    if threshold is not None:
        report["threshold"] = round(threshold, 4)
        # what other in_scope_reject_rate values would give (the same cross-validated confidences)
        report["in_scope_confidence_quantiles"] = {
            str(q): round(float(np.quantile(confidence, q)), 4) for q in REJECT_RATE_QUANTILES
        }
        report["cross_validated_with_threshold"] = _scores(
            labels, decide(classes, cv_probs, threshold, explicit), classes
        )
    if positive_threshold is not None and positive_label is not None:
        report["positive_threshold"] = round(positive_threshold, 4)
        report["cross_validated_with_threshold"] = _binary_scores(
            labels, cv_probs[:, classes.index(positive_label)], positive_label, positive_threshold
        )
    word, char = _vectorizers(word_ngrams, char_ngrams, sublinear_tf)
    model = LogisticRegression(C=c, max_iter=5000, class_weight=weight)
    model.fit(_fit_features(word, char, texts, dense_rows), list(labels))
    params = {
        "word_ngrams": list(word_ngrams),
        "char_ngrams": list(char_ngrams),
        "c": c,
        "balanced": balanced,
        "sublinear_tf": sublinear_tf,
        "positive_label": positive_label,
        "dense": encoder.version if encoder is not None else None,
        "dense_weight": dense_weight if encoder is not None else None,
        "dense_encoder": dense_encoder if encoder is not None else None,
    }
    return TextClassifier(word, char, model, threshold, explicit, positive_threshold, report, params, encoder)


def cv_splits(
    labels: Sequence[str], groups: Sequence[str] | None, cv_folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, test rows) of each fold: ``StratifiedGroupKFold`` when there are groups (a group's
    records are all in one fold), else ``StratifiedKFold``; shuffled with ``seed``."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    label_array = np.asarray(labels, dtype=object)
    rows = np.zeros(len(label_array))
    if groups is None:
        folds = StratifiedKFold(n_splits=cv_folds, shuffle=True, random_state=seed)
        return list(folds.split(rows, label_array))
    group_folds = StratifiedGroupKFold(n_splits=cv_folds, shuffle=True, random_state=seed)
    return list(group_folds.split(rows, label_array, np.asarray(groups, dtype=object)))


def best_threshold(
    labels: Sequence[str], scores: np.ndarray, positive: str, max_false_positive_rate: float
) -> float:
    """The score threshold with the best F1 among those flagging at most ``max_false_positive_rate`` of
    the other class (ties: the higher threshold). Candidates are the scores themselves."""
    best: tuple[float, float] | None = None
    for threshold in sorted(set(float(x) for x in scores), reverse=True):
        figures = _binary_scores(labels, scores, positive, threshold)
        if figures["false_positive_rate"] > max_false_positive_rate:
            break  # lower thresholds only flag more of the other class
        if best is None or figures["f1"] > best[1]:
            best = (threshold, figures["f1"])
    return best[0] if best is not None else float(scores.max()) + 1e-9


def _binary_scores(
    labels: Sequence[str], scores: np.ndarray, positive: str, threshold: float
) -> dict[str, Any]:
    """Precision, recall, F1 of ``positive`` and the false-positive rate on the other class at ``threshold``."""
    truth = np.array([label == positive for label in labels])
    flagged = scores >= threshold
    tp = int((truth & flagged).sum())
    precision = tp / max(1, int(flagged.sum()))
    recall = tp / max(1, int(truth.sum()))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    fpr = int((~truth & flagged).sum()) / max(1, int((~truth).sum()))
    return {
        "label": positive,
        "threshold": round(threshold, 4),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "false_positive_rate": round(fpr, 4),
        "positives": int(truth.sum()),
        "negatives": int((~truth).sum()),
    }


def _fit_features(word: Any, char: Any, texts: Sequence[str], dense_rows: np.ndarray | None = None) -> Any:
    word.fit(texts)
    char.fit(texts)
    return _features(word, char, texts, dense_rows)


def evaluate_classifier(
    classifier: TextClassifier, texts: Sequence[str], labels: Sequence[str]
) -> dict[str, Any]:
    """Scores on a labelled set the classifier was not trained on, thresholds applied."""
    probs = classifier.predict_proba(texts)
    positive = classifier.params.get("positive_label")
    if positive is not None and classifier.positive_threshold is not None:
        column = classifier.classes.index(positive)
        return _binary_scores(labels, probs[:, column], positive, classifier.positive_threshold)
    predicted = decide(classifier.classes, probs, classifier.threshold, classifier.out_of_scope_label)
    return _scores(labels, predicted, sorted(set(classifier.classes) | set(labels)))
