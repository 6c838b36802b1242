"""``alignkit guard train / check / eval`` as functions of their configs."""

from __future__ import annotations

import json
from collections.abc import Callable

from alignkit.config.guard import GuardCheckConfig, GuardEvalConfig, GuardTrainConfig
from alignkit.errors import ConfigError
from alignkit.guard.checks import Guard
from alignkit.guard.classifier import evaluate_classifier, read_labelled, train_classifier
from alignkit.guard.probe import read_prompts, run_guard_probe
from alignkit.io import atomic_write_text
from alignkit.result import CommandResult, say

Progress = Callable[[str], None]


def _need(value: str | None, field: str, usage: str) -> str:
    if not value:
        raise ConfigError(f"missing: give {usage}", field=field)
    return value


def guard_train_command(cfg: GuardTrainConfig, progress: Progress | None = None) -> CommandResult:
    """Train, cross-validate and save one classifier (and score the held-out file, when given)."""
    data = _need(cfg.data, "data", "a labelled file: alignkit guard train DATA --out DIR")
    out = _need(cfg.out, "out", "--out DIR")
    texts, labels, groups = read_labelled(data, cfg.text_field, cfg.label_field)
    classifier = train_classifier(
        texts,
        labels,
        word_ngrams=cfg.word_ngrams,
        char_ngrams=cfg.char_ngrams,
        c=cfg.c,
        cv_folds=cfg.cv_folds,
        seed=cfg.seed,
        out_of_scope_label=cfg.out_of_scope_label,
        in_scope_reject_rate=cfg.in_scope_reject_rate,
        positive_label=cfg.positive_label,
        max_false_positive_rate=cfg.max_false_positive_rate,
        balanced=cfg.balanced,
        dense=cfg.dense,
        dense_weight=cfg.dense_weight,
        dense_encoder=cfg.dense_encoder,
        groups=groups,
        source=data,
    )
    if cfg.held_out:
        held_texts, held_labels, _ = read_labelled(cfg.held_out, cfg.text_field, cfg.label_field)
        classifier.report["held_out"] = evaluate_classifier(classifier, held_texts, held_labels)
    classifier.save(out)
    report = classifier.report
    by = f"by group, {report['groups']} groups" if report["cv"] == "by group" else "by record"
    lines = [
        f"trained on {report['examples']} examples, {len(report['classes'])} classes -> {out}",
        f"cross-validated {report['cv_folds']}-fold {by}",
    ]
    if report.get("dense"):
        lines.append(f"features: word and character n-grams + {report['dense']} embeddings x {cfg.dense_weight:g}")
    for name in ("cross_validated", "cross_validated_with_threshold", "held_out"):
        part = report.get(name)
        if part is None:
            continue
        if "per_class" in part:
            per = part["per_class"]
            worst = min(per, key=lambda c: per[c]["f1"])
            lines.append(f"{name}: accuracy={part['accuracy']:.3f} (lowest F1: {worst} {per[worst]['f1']:.3f})")
        else:
            lines.append(f"{name}: {part['label']} precision={part['precision']:.3f} recall={part['recall']:.3f} "
                         f"F1={part['f1']:.3f} false positives={part['false_positive_rate']:.3f} "
                         f"at threshold {part['threshold']:.3f}")
    if classifier.threshold is not None:
        lines.append(f"out-of-scope confidence threshold: {classifier.threshold:.3f}")
    return CommandResult(output=out, show=say(*lines))


def guard_check_command(cfg: GuardCheckConfig, progress: Progress | None = None) -> CommandResult:
    """Each rule's verdict per text; exit code 1 when any text is blocked."""
    guard = Guard.from_file(_need(cfg.guard, "guard", "--guard guard.yaml"))
    if not cfg.texts:
        raise ConfigError("no texts: alignkit guard check --guard guard.yaml TEXT...", field="texts")
    blocked: list[str] = []
    lines: list[str] = []
    for text in cfg.texts:
        verdict = guard.check_answer(text, cfg.context) if cfg.answers else guard.check_prompt(text)
        if verdict.blocked:
            blocked.append(f"blocked by {verdict.rule}: {text}")
        lines.append(f"{'BLOCK' if verdict.blocked else 'pass '} {text}")
        for r in verdict.results:
            state = ("BLOCK" if r.action == "block" else "flag") if r.fired else "ok"
            lines.append(f"    {r.name:20s} {state:5s} score={r.score:.3f}  {r.detail}  ({r.latency_ms:.2f} ms)")
    return CommandResult(code=1 if blocked else 0, problems=blocked, show=say(*lines))


def guard_eval_command(cfg: GuardEvalConfig, progress: Progress | None = None) -> CommandResult:
    """The guard probe: block rate on red-team prompts, over-block rate on benign look-alikes, p95 latency."""
    guard = Guard.from_file(_need(cfg.guard, "guard", "--guard guard.yaml"))
    blocked = read_prompts(_need(cfg.blocked, "blocked", "--blocked RED_TEAM.jsonl"))
    benign = read_prompts(_need(cfg.benign, "benign", "--benign BENIGN.jsonl"))
    result = run_guard_probe(guard, blocked, benign)
    lines = []
    for key in ("block_rate", "over_block_rate"):
        part = result[key]
        rules = "  ".join(f"{k}={v:.3f}" for k, v in part["per_rule_fired"].items())
        lines.append(f"{key:16s} overall={part['overall']:.3f} (n={part['n']})  fired per rule: {rules}")
    p95 = result["p95_ms"]
    lines.append(f"p95 ms: prompt check {p95['prompt_check']:.2f}  "
                 + "  ".join(f"{k}={v:.2f}" for k, v in p95["per_rule"].items()))
    if cfg.out:
        atomic_write_text(cfg.out, json.dumps(result, indent=2))
    return CommandResult(output=cfg.out, outputs={"figures": result}, show=say(*lines))
