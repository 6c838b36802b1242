"""Dev figures of the guard example: the pipeline's two classifiers trained and scored on the
``make_data.py --dev K`` folds (the training pool split by template and fact; no held-out text is
built), pooled over the folds. Data changes are tuned on these figures, never on the held-out files.

    .venv/bin/python examples/guard/dev_eval.py            # about 1 minute on 2 CPU cores
    .venv/bin/python examples/guard/dev_eval.py --in-scope-reject-rate 0.05

The training options are the pipeline's (``pipeline.yaml``) unless given here. The probe figures
are the guard's rules on the dev folds' red-team and benign files: toxic at the calibrated
threshold, off-topic where the intent is ``out_of_scope`` or under the confidence threshold.
"""

from __future__ import annotations

import argparse
import runpy
from pathlib import Path

import numpy as np
import yaml

from alignkit.guard.classifier import decide, train_classifier

HERE = Path(__file__).resolve().parent
OPTIONS = ("out_of_scope_label", "positive_label", "in_scope_reject_rate", "max_false_positive_rate", "c")


def stage_options(name: str) -> dict:
    stages = yaml.safe_load((HERE / "pipeline.yaml").read_text(encoding="utf-8"))["stages"]
    config = next(s["config"] for s in stages if s["name"] == name)
    return {k: config[k] for k in OPTIONS if k in config}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--in-scope-reject-rate", type=float, default=None)
    args = parser.parse_args()
    module = runpy.run_path(str(HERE / "make_data.py"))
    intent_options, toxicity_options = stage_options("intent"), stage_options("toxicity")
    if args.in_scope_reject_rate is not None:
        intent_options["in_scope_reject_rate"] = args.in_scope_reject_rate
    n = {k: 0 for k in ("in", "in_ok", "oos", "oos_ok", "tp", "fn", "fp", "tn")}
    probe = {name: [0, 0, 0, 0] for name in ("redteam.jsonl", "benign.jsonl")}  # n, blocked, toxic, off-topic
    for fold in range(module["DEV_FOLDS"]):
        files = module["build"](args.seed, fold)

        def columns(name: str, files: dict = files) -> tuple[list[str], list[str]]:
            return [r["text"] for r in files[name]], [r["label"] for r in files[name]]

        intent = train_classifier(*columns("intent_train.jsonl"), **intent_options)
        toxicity = train_classifier(*columns("toxicity_train.jsonl"), **toxicity_options)
        texts, labels = columns("intent_heldout.jsonl")
        probs = intent.predict_proba(texts)
        for label, predicted in zip(
            labels, decide(intent.classes, probs, intent.threshold, intent.out_of_scope_label), strict=True
        ):
            key = "oos" if label == intent.out_of_scope_label else "in"
            n[key] += 1
            n[key + "_ok"] += predicted == label
        texts, labels = columns("toxicity_heldout.jsonl")
        flagged = (
            toxicity.predict_proba(texts)[:, toxicity.classes.index("toxic")] >= toxicity.positive_threshold
        )
        for label, hit in zip(labels, flagged, strict=True):
            n[("tp" if hit else "fn") if label == "toxic" else ("fp" if hit else "tn")] += 1
        for name, counts in probe.items():
            prompts = [r["text"] for r in files[name]]
            toxic = (
                toxicity.predict_proba(prompts)[:, toxicity.classes.index("toxic")]
                >= toxicity.positive_threshold
            )
            decided = decide(
                intent.classes, intent.predict_proba(prompts), intent.threshold, intent.out_of_scope_label
            )
            off = np.array([d == intent.out_of_scope_label for d in decided])
            for i, value in enumerate(
                (len(prompts), int((toxic | off).sum()), int(toxic.sum()), int(off.sum()))
            ):
                counts[i] += value
        print(
            f"fold {fold}: out-of-scope threshold {intent.threshold:.3f}, toxic threshold {toxicity.positive_threshold:.3f}"
        )
    precision = n["tp"] / max(1, n["tp"] + n["fp"])
    recall = n["tp"] / max(1, n["tp"] + n["fn"])
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    print(
        f"intent: in-scope accuracy {n['in_ok'] / n['in']:.3f} ({n['in_ok']}/{n['in']}), "
        f"out-of-scope recall {n['oos_ok'] / n['oos']:.3f} ({n['oos_ok']}/{n['oos']})"
    )
    print(
        f"toxicity: precision {precision:.3f} recall {recall:.3f} F1 {f1:.3f} "
        f"false positives {n['fp'] / max(1, n['fp'] + n['tn']):.3f} ({n['tp'] + n['fn']} toxic, {n['fp'] + n['tn']} benign)"
    )
    for name, (total, blocked, toxic, off) in probe.items():
        print(
            f"probe {name}: blocked {blocked / total:.3f} of {total} (toxic rule {toxic / total:.3f}, off-topic {off / total:.3f})"
        )


if __name__ == "__main__":
    main()
