"""A loaded guard file: every rule scored on a prompt (input rules) or an answer (output rules).

What the server and ``chat`` call::

    guard = Guard.from_file("guard.yaml")
    verdict = guard.check_prompt(user_text)            # before generation
    verdict = guard.check_answer(reply, context=text)  # after it (context: the retrieved chunks)
    if verdict.blocked: reply with guard.refusal (mode refuse) or an HTTP 400 (mode error)

Every rule is scored even after one fires, so a verdict shows all of them (and the probe can report
each rule's own block rate). A ``flag`` rule never blocks.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignkit.config.base import load_config
from alignkit.config.guard import GuardFileConfig, GuardRule
from alignkit.errors import ConfigError
from alignkit.guard.classifier import TextClassifier

DEFAULT_THRESHOLDS = {"toxicity": 0.5, "sentiment": -0.6, "grounding": 0.5}
_WORD_RE = re.compile(r"[a-z0-9]+(?:[.,'][a-z0-9]+)*")
# Words that carry no fact: the grounding check counts the answer's other words found in the context.
# fmt: off
_FUNCTION_WORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "has", "have",
    "i", "in", "is", "it", "its", "of", "on", "or", "that", "the", "this", "to", "was", "with", "you",
    "your", "about", "it's", "there", "will", "yes", "no", "not",
})
# fmt: on


@dataclass(frozen=True)
class RuleResult:
    name: str
    check: str
    score: float
    fired: bool
    action: str
    detail: str
    latency_ms: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "check": self.check,
            "score": round(self.score, 4),
            "fired": self.fired,
            "action": self.action,
            "detail": self.detail,
            "latency_ms": round(self.latency_ms, 3),
        }


@dataclass(frozen=True)
class Verdict:
    """``blocked``: a ``block`` rule fired; ``rule``: the first one that did (the API's extension field)."""

    blocked: bool
    rule: str | None
    results: tuple[RuleResult, ...]
    refusal: str

    @property
    def flagged(self) -> list[str]:
        return [r.name for r in self.results if r.fired and r.action == "flag"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "blocked": self.blocked,
            "rule": self.rule,
            "flagged": self.flagged,
            "results": [r.as_dict() for r in self.results],
        }


def answer_support(answer: str, context: str) -> float:
    """Share of the answer's content words that appear in the context (1.0 for an answer without any)."""
    context_words = set(_WORD_RE.findall(context.lower()))
    words = [w for w in _WORD_RE.findall(answer.lower()) if w not in _FUNCTION_WORDS]
    if not words:
        return 1.0
    return sum(w in context_words for w in words) / len(words)


class Guard:
    def __init__(self, config: GuardFileConfig, base: Path = Path(".")) -> None:
        self.config = config
        loaded: dict[str, TextClassifier] = {}
        self._rule_classifier: dict[str, TextClassifier] = {}
        for rule in config.input + config.output:
            if rule.classifier is not None:
                key = self._key(rule, base)
                if key not in loaded:
                    loaded[key] = TextClassifier.load(key)
                self._check_rule(rule, loaded[key])
                self._rule_classifier[rule.name] = loaded[key]
        self._vader: Any = None
        if any(rule.check == "sentiment" for rule in config.input + config.output):
            try:
                from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
            except ImportError:
                raise ConfigError(
                    "the sentiment check needs vaderSentiment: pip install 'alignkit[guard]'", field="rules"
                ) from None
            self._vader = SentimentIntensityAnalyzer()

    @staticmethod
    def _key(rule: GuardRule, base: Path) -> str:
        assert rule.classifier is not None
        path = Path(rule.classifier)
        return str(path if path.is_absolute() or path.exists() else base / path)

    @staticmethod
    def _check_rule(rule: GuardRule, classifier: TextClassifier) -> None:
        classes = classifier.classes
        if rule.check == "toxicity" and rule.label not in classes:
            raise ConfigError(
                f"label {rule.label!r} is not a class of {rule.classifier} ({', '.join(classes)})",
                field=f"rules.{rule.name}.label",
            )
        unknown = [c for c in rule.allow if c not in classes]
        if unknown:
            raise ConfigError(
                f"allowed class {unknown[0]!r} is not a class of {rule.classifier}",
                field=f"rules.{rule.name}.allow",
            )

    @classmethod
    def from_file(cls, path: str | Path) -> Guard:
        """Classifier paths are taken as given, else relative to the guard file's folder."""
        return cls(load_config(GuardFileConfig, Path(path), []), Path(path).parent)

    @property
    def refusal(self) -> str:
        return self.config.refusal

    def _score(self, rule: GuardRule, text: str, context: str | None) -> tuple[float, bool, str]:
        if rule.check == "toxicity":
            classifier = self._rule_classifier[rule.name]
            score = classifier.probability(text, rule.label)
            threshold = rule.threshold
            if threshold is None and classifier.params.get("positive_label") == rule.label:
                threshold = classifier.positive_threshold
            if threshold is None:
                threshold = DEFAULT_THRESHOLDS["toxicity"]
            return score, score >= threshold, f"p({rule.label})={score:.3f} (fires at >= {threshold:.3f})"
        if rule.check == "intent":
            classifier = self._rule_classifier[rule.name]
            label, confidence = classifier.top(text)
            threshold = classifier.threshold if rule.threshold is None else rule.threshold
            allowed = rule.allow or [c for c in classifier.classes if c != classifier.out_of_scope_label]
            unsure = threshold is not None and confidence < threshold
            fired = label not in allowed or unsure
            why = (
                "not allowed"
                if label not in allowed
                else (f"confidence < {threshold:.3f}" if unsure else "allowed")
            )
            return confidence, fired, f"{label} ({why})"
        if rule.check == "sentiment":
            compound = float(self._vader.polarity_scores(text)["compound"])
            threshold = DEFAULT_THRESHOLDS["sentiment"] if rule.threshold is None else rule.threshold
            return compound, compound <= threshold, f"compound={compound:.3f} (fires at <= {threshold})"
        threshold = DEFAULT_THRESHOLDS["grounding"] if rule.threshold is None else rule.threshold
        if context is None:
            return 1.0, False, "no context given: skipped"
        support = answer_support(text, context)
        return support, support < threshold, f"support={support:.3f} (fires under {threshold})"

    def _run(
        self, rules: list[GuardRule], text: str, context: str | None, clock: Callable[[], float]
    ) -> Verdict:
        results = []
        for rule in rules:
            started = clock()
            score, fired, detail = self._score(rule, text, context)
            results.append(
                RuleResult(
                    rule.name, rule.check, score, fired, rule.action, detail, (clock() - started) * 1000.0
                )
            )
        blocking = next((r.name for r in results if r.fired and r.action == "block"), None)
        return Verdict(blocking is not None, blocking, tuple(results), self.config.refusal)

    def check_prompt(self, text: str) -> Verdict:
        """The input rules on a user prompt."""
        return self._run(self.config.input, text, None, time.perf_counter)

    def check_answer(self, text: str, context: str | None = None) -> Verdict:
        """The output rules on a model answer; ``context`` (the retrieved text) feeds the grounding check."""
        return self._run(self.config.output, text, context, time.perf_counter)
