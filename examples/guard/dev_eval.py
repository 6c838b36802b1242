"""Dev figures of the guard example: the pipeline's two classifiers trained and scored on the
``make_data.py --dev K`` folds (the training pool split by template and fact; no held-out text is
built), pooled over the folds. Data changes are tuned on these figures, never on the held-out files.

    .venv/bin/python examples/guard/dev_eval.py            # about 1 minute on 2 CPU cores (--jobs 2)
    .venv/bin/python examples/guard/dev_eval.py --in-scope-reject-rate 0.05
    .venv/bin/python examples/guard/dev_eval.py --intent-only --c 5 --word-ngrams 1 3 --by-record

The training options are the pipeline's (``pipeline.yaml``) unless given here; the training records
carry ``group`` (their template or fact), so cross-validation is by group as in the pipeline
(``--by-record``: ignore the groups, the earlier behaviour). The probe figures are the guard's rules
on the dev folds' red-team and benign files: toxic at the calibrated threshold, off-topic where the
intent is ``out_of_scope`` or under the confidence threshold (both need the toxicity classifier, so
``--intent-only`` leaves them out).
"""

from __future__ import annotations

import argparse
import runpy
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from alignkit.guard.classifier import decide, train_classifier

HERE = Path(__file__).resolve().parent
OPTIONS = (
    "out_of_scope_label",
    "positive_label",
    "in_scope_reject_rate",
    "max_false_positive_rate",
    "c",
    "word_ngrams",
    "char_ngrams",
    "dense",
    "dense_weight",
    "dense_encoder",
)


def stage_options(name: str) -> dict:
    stages = yaml.safe_load((HERE / "pipeline.yaml").read_text(encoding="utf-8"))["stages"]
    config = next(s["config"] for s in stages if s["name"] == name)
    options = {k: config[k] for k in OPTIONS if k in config}
    for key in ("word_ngrams", "char_ngrams"):
        if key in options:
            options[key] = tuple(options[key])
    return options


def with_dense(options: dict, args: argparse.Namespace) -> dict:
    if args.dense is not None:
        options["dense"] = args.dense == "on"
    if args.dense_weight is not None:
        options["dense_weight"] = args.dense_weight
    if args.dense_encoder is not None:
        options["dense_encoder"] = args.dense_encoder
    return options


def toxicity_options(args: argparse.Namespace) -> dict:
    options = with_dense(stage_options("toxicity"), args)
    if args.max_false_positive_rate is not None:
        options["max_false_positive_rate"] = args.max_false_positive_rate
    return options


def intent_options(args: argparse.Namespace) -> dict:
    options = with_dense(stage_options("intent"), args)
    if args.in_scope_reject_rate is not None:
        options["in_scope_reject_rate"] = args.in_scope_reject_rate
    if args.c is not None:
        options["c"] = args.c
    if args.word_ngrams is not None:
        options["word_ngrams"] = tuple(args.word_ngrams)
    if args.char_ngrams is not None:
        options["char_ngrams"] = tuple(args.char_ngrams)
    if args.no_sublinear_tf:
        options["sublinear_tf"] = False
    return options


def run_fold(fold: int, args: argparse.Namespace) -> dict[str, Any]:
    """One dev fold's counts (pooled by ``main``)."""
    module = runpy.run_path(str(HERE / "make_data.py"))
    files = module["build"](args.seed, fold)

    def columns(name: str, train: bool = True) -> dict[str, Any]:
        rows = files[name]
        grouped = not (train and args.by_record) and all("group" in r for r in rows)
        groups = [r["group"] for r in rows] if grouped else None
        return {"texts": [r["text"] for r in rows], "labels": [r["label"] for r in rows], "groups": groups}

    n: Counter[str] = Counter()
    per_class: Counter[tuple[str, str]] = Counter()  # (true, predicted)
    by_kind: Counter[tuple[str, bool]] = Counter()  # (kind of in-scope dev item, right)
    rates: Counter[tuple[float, str]] = Counter()  # (in_scope_reject_rate, in / in_ok / oos / oos_ok)
    intent = train_classifier(**columns("intent_train.jsonl"), **intent_options(args))
    held = columns("intent_heldout.jsonl", train=False)
    probs = intent.predict_proba(held["texts"])
    quantiles = intent.report["in_scope_confidence_quantiles"]
    for rate in args.rates:
        threshold = quantiles[str(rate)]
        for label, predicted in zip(
            held["labels"], decide(intent.classes, probs, threshold, intent.out_of_scope_label), strict=True
        ):
            key = "oos" if label == intent.out_of_scope_label else "in"
            rates[(rate, key)] += 1
            rates[(rate, key + "_ok")] += predicted == label
    decided = decide(intent.classes, probs, intent.threshold, intent.out_of_scope_label)
    for i, (label, predicted) in enumerate(zip(held["labels"], decided, strict=True)):
        key = "oos" if label == intent.out_of_scope_label else "in"
        n[key] += 1
        n[key + "_ok"] += predicted == label
        per_class[(label, predicted)] += 1
        if key == "in" and held["groups"] is not None:  # template / added / fact / ...
            by_kind[(held["groups"][i].split(":")[0], predicted == label)] += 1
    line = f"fold {fold}: out-of-scope threshold {intent.threshold:.3f}"
    probe: dict[str, list[int]] = {}
    if not args.intent_only:
        toxicity = train_classifier(**columns("toxicity_train.jsonl"), **toxicity_options(args))
        assert toxicity.positive_threshold is not None
        held = columns("toxicity_heldout.jsonl")
        column = toxicity.classes.index("toxic")
        flagged = toxicity.predict_proba(held["texts"])[:, column] >= toxicity.positive_threshold
        for label, hit in zip(held["labels"], flagged, strict=True):
            n[("tp" if hit else "fn") if label == "toxic" else ("fp" if hit else "tn")] += 1
        for name in ("redteam.jsonl", "benign.jsonl"):
            prompts = [r["text"] for r in files[name]]
            toxic = toxicity.predict_proba(prompts)[:, column] >= toxicity.positive_threshold
            decided = decide(
                intent.classes, intent.predict_proba(prompts), intent.threshold, intent.out_of_scope_label
            )
            off = np.array([d == intent.out_of_scope_label for d in decided])
            probe[name] = [len(prompts), int((toxic | off).sum()), int(toxic.sum()), int(off.sum())]
        line += f", toxic threshold {toxicity.positive_threshold:.3f}"
    return {"n": n, "per_class": per_class, "by_kind": by_kind, "rates": rates, "probe": probe, "line": line}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--in-scope-reject-rate", type=float, default=None)
    parser.add_argument("--c", type=float, default=None, help="intent: inverse L2 strength")
    parser.add_argument("--word-ngrams", type=int, nargs=2, default=None, metavar=("LO", "HI"))
    parser.add_argument("--char-ngrams", type=int, nargs=2, default=None, metavar=("LO", "HI"))
    parser.add_argument("--no-sublinear-tf", action="store_true", help="intent: raw term frequencies")
    parser.add_argument(
        "--dense", choices=["on", "off"], default=None, help="both: e5 embeddings in the features"
    )
    parser.add_argument("--dense-weight", type=float, default=None, help="both: the embeddings' scale")
    parser.add_argument(
        "--dense-encoder", choices=["e5", "wordllama"], default=None, help="both: which embeddings"
    )
    parser.add_argument("--max-false-positive-rate", type=float, default=None, help="toxicity: the FP budget")
    parser.add_argument(
        "--rates",
        type=float,
        nargs="*",
        default=[],
        help="also score these in_scope_reject_rate values (from the report's in_scope_confidence_quantiles)",
    )
    parser.add_argument("--by-record", action="store_true", help="cross-validate by record (ignore groups)")
    parser.add_argument("--intent-only", action="store_true", help="skip the toxicity classifier and probe")
    parser.add_argument("--per-class", action="store_true", help="dev recall of each intent")
    parser.add_argument("--jobs", type=int, default=2, help="folds trained at once")
    args = parser.parse_args()
    folds = range(runpy.run_path(str(HERE / "make_data.py"))["DEV_FOLDS"])
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            results = list(pool.map(run_fold, folds, [args] * len(folds)))
    else:
        results = [run_fold(fold, args) for fold in folds]
    n: Counter[str] = Counter()
    per_class: Counter[tuple[str, str]] = Counter()
    by_kind: Counter[tuple[str, bool]] = Counter()
    rates: Counter[tuple[float, str]] = Counter()
    probe: dict[str, list[int]] = {}
    for result in results:
        print(result["line"])
        n.update(result["n"])
        per_class.update(result["per_class"])
        by_kind.update(result["by_kind"])
        rates.update(result["rates"])
        for name, counts in result["probe"].items():
            probe[name] = [a + b for a, b in zip(probe.get(name, [0, 0, 0, 0]), counts, strict=True)]
    print(f"intent options: {intent_options(args)}{' (by record)' if args.by_record else ''}")
    if not args.intent_only:
        print(f"toxicity options: {toxicity_options(args)}")
    print(
        f"intent: in-scope accuracy {n['in_ok'] / n['in']:.3f} ({n['in_ok']}/{n['in']}), "
        f"out-of-scope recall {n['oos_ok'] / n['oos']:.3f} ({n['oos_ok']}/{n['oos']})"
    )
    kinds = sorted({k for k, _ in by_kind})
    print(
        "  in-scope by kind: "
        + ", ".join(f"{k} {by_kind[(k, True)]}/{by_kind[(k, True)] + by_kind[(k, False)]}" for k in kinds)
    )
    for rate in args.rates:
        print(
            f"  in_scope_reject_rate {rate}: in-scope {rates[(rate, 'in_ok')] / rates[(rate, 'in')]:.3f} "
            f"({rates[(rate, 'in_ok')]}/{rates[(rate, 'in')]}), "
            f"out-of-scope {rates[(rate, 'oos_ok')] / rates[(rate, 'oos')]:.3f} "
            f"({rates[(rate, 'oos_ok')]}/{rates[(rate, 'oos')]})"
        )
    if args.per_class:
        for label in sorted({t for t, _ in per_class}):
            total = sum(v for (t, _), v in per_class.items() if t == label)
            wrong = Counter({p: v for (t, p), v in per_class.items() if t == label and p != label})
            print(
                f"  {label:16s} recall {per_class[(label, label)] / total:.3f} ({per_class[(label, label)]}/{total})"
                f"  misses: {', '.join(f'{p} {v}' for p, v in wrong.most_common(3))}"
            )
    if not args.intent_only:
        precision = n["tp"] / max(1, n["tp"] + n["fp"])
        recall = n["tp"] / max(1, n["tp"] + n["fn"])
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        print(
            f"toxicity: precision {precision:.3f} recall {recall:.3f} F1 {f1:.3f} "
            f"false positives {n['fp'] / max(1, n['fp'] + n['tn']):.3f} "
            f"({n['tp'] + n['fn']} toxic, {n['fp'] + n['tn']} benign)"
        )
        for name, (total, blocked, toxic, off) in probe.items():
            print(
                f"probe {name}: blocked {blocked / total:.3f} of {total} "
                f"(toxic rule {toxic / total:.3f}, off-topic {off / total:.3f})"
            )


if __name__ == "__main__":
    main()
