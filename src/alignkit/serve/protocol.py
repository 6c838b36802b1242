"""The OpenAI request bodies this server accepts, and how they map to ``GenerationParams``.

Every field is typed and bounded; an unknown field is a 400 naming it. A field OpenAI defines but
that would do nothing here is refused with the reason, never silently ignored:
``frequency_penalty`` / ``presence_penalty`` (use ``repetition_penalty``), ``logit_bias``, tools,
a non-text ``response_format``, and transformers' ``length_penalty`` (it acts only in beam search).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from alignkit.config.serve import ServeLimits
from alignkit.generation.types import GenerationParams


class RequestError(Exception):
    """A client mistake: answered with ``status`` and OpenAI's error JSON."""

    def __init__(self, message: str, *, status: int = 400, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error", headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param
        self.code = code
        self.kind = kind
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, protected_namespaces=())


class TextPart(_Body):
    type: Literal["text"]
    text: str


class Message(_Body):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(part.text for part in self.content)


class StreamOptions(_Body):
    include_usage: bool = False


class ResponseFormat(_Body):
    type: str


class _Sampling(_Body):
    """Fields shared by chat and text completions (OpenAI's, plus alignkit's ``top_k`` and ``repetition_penalty``)."""

    model: str | None = Field(None, max_length=256)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    n: int = Field(1, ge=1)
    seed: int | None = Field(None, ge=-(2**63), lt=2**64)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(None, max_length=256)  # an end-user id for the caller's own records
    top_k: int = Field(0, ge=0, le=1_000_000)
    repetition_penalty: float = Field(1.0, gt=0.0, le=10.0)
    # Refused below when set to anything that would act: kept as fields so the message says why.
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    length_penalty: float | None = None


class ChatRequest(_Sampling):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0)
    response_format: ResponseFormat | None = None
    tools: list[Any] | None = None
    tool_choice: Any | None = None


class CompletionRequest(_Sampling):
    prompt: str | list[str]
    logprobs: int | None = Field(None, ge=0)
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = Field(None, ge=1)


def parse(model: type[_Sampling], data: Any) -> Any:
    """Validates a decoded JSON body; the first problem becomes a 400 naming its field."""
    if not isinstance(data, dict):
        raise RequestError("expected a JSON object as the request body")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        param = ".".join(str(part) for part in error["loc"]) or None
        if error["type"] == "extra_forbidden":
            raise RequestError(f"unknown field {param!r}", param=param) from None
        raise RequestError(f"{param}: {error['msg']}" if param else error["msg"], param=param) from None


def _refuse_inert_fields(request: _Sampling) -> None:
    if request.length_penalty is not None:
        raise RequestError("length_penalty acts only in beam search, and this server samples or decodes greedily: "
                           "it would do nothing", param="length_penalty")
    for name in ("frequency_penalty", "presence_penalty"):
        if getattr(request, name):
            raise RequestError(f"{name} is not supported; use repetition_penalty (> 1 discourages repeats)",
                               param=name)
    if request.logit_bias:
        raise RequestError("logit_bias is not supported", param="logit_bias")
    if request.stream_options is not None and not request.stream:
        raise RequestError("stream_options needs stream: true", param="stream_options")
    if isinstance(request, ChatRequest):
        if request.tools or request.tool_choice not in (None, "none"):
            raise RequestError("tools are not supported by this server", param="tools")
        if request.response_format is not None and request.response_format.type != "text":
            raise RequestError("only response_format {\"type\": \"text\"} is supported", param="response_format")
    if isinstance(request, CompletionRequest):
        if request.echo:
            raise RequestError("echo is not supported", param="echo")
        if request.suffix:
            raise RequestError("suffix is not supported (no fill-in-the-middle)", param="suffix")
        if request.best_of not in (None, request.n):
            raise RequestError("best_of is not supported (it would need scoring n candidates)", param="best_of")


def stop_strings(request: _Sampling, limits: ServeLimits) -> tuple[str, ...]:
    stops = [request.stop] if isinstance(request.stop, str) else list(request.stop or [])
    if len(stops) > limits.max_stop:
        raise RequestError(f"at most {limits.max_stop} stop strings", param="stop")
    if any(not stop for stop in stops):
        raise RequestError("a stop string must not be empty", param="stop")
    return tuple(stops)


def generation_params(request: _Sampling, limits: ServeLimits) -> GenerationParams:
    """Request fields -> ``GenerationParams``, within ``limits``; a 400 naming the field otherwise."""
    _refuse_inert_fields(request)
    max_tokens = request.max_tokens
    if isinstance(request, ChatRequest) and request.max_completion_tokens is not None:
        if max_tokens is not None and max_tokens != request.max_completion_tokens:
            raise RequestError("max_tokens and max_completion_tokens differ; give one", param="max_completion_tokens")
        max_tokens = request.max_completion_tokens
    if max_tokens is None:
        max_tokens = limits.default_max_tokens
    if max_tokens > limits.max_tokens:
        raise RequestError(f"max_tokens={max_tokens} exceeds this server's limit of {limits.max_tokens}",
                           param="max_tokens")
    if request.n > limits.max_n:
        raise RequestError(f"n={request.n} exceeds this server's limit of {limits.max_n}", param="n")
    logprobs: int | None = None
    if isinstance(request, ChatRequest):
        if request.top_logprobs is not None and not request.logprobs:
            raise RequestError("top_logprobs needs logprobs: true", param="top_logprobs")
        if request.logprobs:
            logprobs = request.top_logprobs or 0
    elif isinstance(request, CompletionRequest):
        logprobs = request.logprobs
    if logprobs is not None:
        if logprobs > limits.max_top_logprobs:
            raise RequestError(f"at most {limits.max_top_logprobs} top log-probs", param="top_logprobs")
        if request.stream:
            raise RequestError("logprobs are not supported with stream: true", param="logprobs")
    # Without a seed a sampled request still needs one: take it from the clock.
    seed = request.seed if request.seed is not None else _clock_seed()
    return GenerationParams(
        max_new_tokens=max_tokens, temperature=request.temperature, top_p=request.top_p, top_k=request.top_k,
        repetition_penalty=request.repetition_penalty, stop=stop_strings(request, limits),
        num_samples=request.n, seed=seed % 2**63, logprobs=logprobs,
    )


def _clock_seed() -> int:
    import time

    return time.time_ns() % 2**63


def chat_messages(request: ChatRequest) -> list[dict[str, str]]:
    """OpenAI messages -> template messages (``developer`` is OpenAI's newer name for ``system``)."""
    return [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in request.messages]


def finite(value: float) -> float | None:
    """A log-prob for JSON: -inf (a token the penalties ruled out) has no JSON number."""
    return value if math.isfinite(value) else -9999.0
