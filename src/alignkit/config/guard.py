"""Config models of guardrails: ``alignkit guard train`` and the guard file (``guard.yaml``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from alignkit.config.base import StrictModel

DEFAULT_REFUSAL = "Sorry, I can't help with that. I can answer questions about our products and your orders."


class GuardTrainConfig(StrictModel):
    """``alignkit guard train DATA --out DIR``: TF-IDF (word + character n-grams) + logistic regression."""

    data: str | None = Field(None, description="labelled JSONL/JSON/CSV: text, label")
    out: str | None = Field(None, description="the classifier folder")
    held_out: str | None = Field(
        None, description="optional labelled file scored after training (never trained on)"
    )
    text_field: str = Field("text", description="the field holding the text")
    label_field: str = Field("label", description="the field holding the class")
    out_of_scope_label: str | None = Field(
        "out_of_scope", description="the explicit out-of-scope class, if the data has one"
    )
    in_scope_reject_rate: float = Field(
        0.05,
        ge=0.0,
        lt=1.0,
        description="confidence threshold: the share of in-scope cross-validated predictions it may reject",
    )
    positive_label: str | None = Field(
        None, description="binary checks (toxicity): the class whose probability is thresholded"
    )
    max_false_positive_rate: float = Field(
        0.05,
        gt=0.0,
        lt=1.0,
        description="positive_label: the threshold (best cross-validated F1) may flag at most this share of the other class",
    )
    balanced: bool = Field(True, description="weight classes inversely to their frequency")
    cv_folds: int = Field(5, ge=2, description="folds of the cross-validated report and threshold")
    c: float = Field(10.0, gt=0.0, description="inverse L2 strength of the logistic regression")
    word_ngrams: tuple[int, int] = Field((1, 2), description="word n-gram range")
    char_ngrams: tuple[int, int] = Field((2, 5), description="character n-gram range (within word bounds)")
    dense: bool = Field(
        False,
        description="also feed the text's sentence embedding (dense_encoder) to the regression; better on "
        "wording the data never had",
    )
    dense_encoder: Literal["e5", "wordllama"] = Field(
        "e5",
        description="dense: e5 (multilingual-e5-small, needs alignkit[rag]: a transformer pass, ~10-20 ms a "
        "prompt on 2 CPU cores) or wordllama (static token vectors, alignkit[guard]: well under 1 ms)",
    )
    dense_weight: float = Field(
        4.0, gt=0.0, description="dense: the embedding's scale against the unit-length n-gram rows"
    )
    seed: int = Field(0, description="fold shuffling seed")

    @field_validator("dense_encoder", "dense_weight")
    @classmethod
    def _needs_dense(cls, value: Any, info: ValidationInfo) -> Any:
        # a word that would do nothing is an error, not silently ignored
        if not info.data.get("dense"):
            raise ValueError(f"{info.field_name} is set but dense is false: set dense: true or drop it")
        return value


Check = Literal["toxicity", "intent", "sentiment", "grounding"]


class GuardRule(StrictModel):
    """One check, listed under ``input`` (the user's prompt) or ``output`` (the answer)."""

    name: str = Field(..., description="shown in verdicts and in the API's extension field")
    check: Check = Field(..., description="toxicity | intent | sentiment | grounding")
    classifier: str | None = Field(
        None, description="toxicity/intent: the folder written by alignkit guard train"
    )
    label: str = Field("toxic", description="toxicity: the class whose probability is the score")
    allow: list[str] = Field(
        default_factory=list, description="intent: allowed classes (empty: every class but out-of-scope)"
    )
    threshold: float | None = Field(
        None,
        description="toxicity: fire at score >= it (default: the classifier's calibrated one, else 0.5); intent: fire under this confidence "
        "(default: the classifier's calibrated one); sentiment: fire at VADER compound <= it (default -0.6); "
        "grounding: fire when under this share of the answer's words are in the context (default 0.5)",
    )
    action: Literal["block", "flag"] = Field(
        "block", description="block replaces the reply; flag only reports"
    )

    @model_validator(mode="after")
    def _classifier_when_needed(self) -> GuardRule:
        if self.check in ("toxicity", "intent") and not self.classifier:
            raise ValueError(f"rule {self.name!r}: a {self.check} check needs classifier: DIR")
        return self


class GuardFileConfig(StrictModel):
    """A guard file: input and output rules, the refusal message and what a block does to an API request."""

    input: list[GuardRule] = Field(default_factory=list, description="rules on the prompt, before generation")
    output: list[GuardRule] = Field(default_factory=list, description="rules on the answer, after generation")
    refusal: str = Field(DEFAULT_REFUSAL, description="the reply that replaces a blocked one")
    mode: Literal["refuse", "error"] = Field(
        "refuse",
        description="refuse = HTTP 200 with the refusal and finish_reason content_filter; "
        "error = HTTP 400 with code content_filter",
    )

    @model_validator(mode="after")
    def _unique_names(self) -> GuardFileConfig:
        grounding = [rule.name for rule in self.input if rule.check == "grounding"]
        if grounding:
            raise ValueError(
                f"rule {grounding[0]!r}: the grounding check runs on the answer (list it under output)"
            )
        names = [rule.name for rule in self.input + self.output]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"rule names must be unique: {duplicates[0]!r} repeats")
        return self


class GuardCheckConfig(StrictModel):
    """``alignkit guard check --guard guard.yaml TEXT...``."""

    guard: str | None = Field(None, description="the guard file")
    texts: list[str] = Field(default_factory=list, description="texts to check")
    answers: bool = Field(False, description="check the texts as answers (output rules) instead of prompts")
    context: str | None = Field(None, description="answers: the retrieved context for the grounding check")


class GuardEvalConfig(StrictModel):
    """``alignkit guard eval``: the guard probe (block rate, over-block rate, p95 latency per rule)."""

    guard: str | None = Field(None, description="the guard file")
    blocked: str | None = Field(
        None, description="red-team prompts (text per record or .txt line): should be blocked"
    )
    benign: str | None = Field(None, description="benign look-alike prompts: should pass")
    out: str | None = Field(None, description="also write the figures as JSON here")
