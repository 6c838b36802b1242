"""Generator backend for any OpenAI-compatible HTTP endpoint (vLLM, llama.cpp server, hosted APIs).

Standard library only. What it adds over a bare ``urlopen``:

- retries with exponential backoff and jitter on 429, 5xx, connection errors and timeouts
  (``Retry-After`` is honoured on 429/503, capped by ``max_backoff_s``); other 4xx fail at once,
  quoting the server's message, because retrying a bad request only costs money;
- a thread pool (``concurrency`` requests in flight), results returned in input order;
- an optional append-only JSONL cache keyed by a hash of the request, so an interrupted
  Self-Instruct run resumes without paying twice. The key covers the endpoint path and the full
  request body (model, messages, sampling settings, seed) but not the base URL or the API key:
  the same model served from another host is a cache hit. Identical requests in one call are sent once.

Sampling settings map to the OpenAI request fields: ``num_samples -> n``, ``temperature``,
``top_p``, ``max_new_tokens -> max_tokens``, ``stop``, ``seed``. ``top_k`` and
``repetition_penalty`` are not OpenAI fields; they are sent (as vLLM and llama.cpp name them) only
when set away from their defaults, so a hosted API rejects them loudly rather than ignoring them.
``length_penalty`` (a beam-search setting) has no HTTP counterpart and is not sent.
HTTP replies carry no token ids, so ``Generation.token_ids`` is empty.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignkit.errors import AlignkitError, ConfigError, DataError
from alignkit.generation.types import Chat, Generation, GenerationParams
from alignkit.io import atomic_write_text

logger = logging.getLogger(__name__)

# finish_reason values meaning "the model ended the reply itself" across OpenAI, vLLM, llama.cpp
# and Anthropic-style proxies. Anything else (length, content_filter, null) is not a clean stop.
_STOP_REASONS = frozenset({"stop", "eos", "eos_token", "stop_sequence", "end_turn", "tool_calls"})
_RETRY_STATUS_MIN = 500
_TOO_MANY_REQUESTS = 429
_ERROR_BODY_CHARS = 300


def finish_reason_to_stopped(finish_reason: str | None) -> tuple[bool, str]:
    """``(stopped, normalised finish_reason)``: ``(True, "stop")`` or ``(False, "length")``."""
    if finish_reason in _STOP_REASONS:
        return True, "stop"
    return False, "length"


def request_cache_key(path: str, body: Mapping[str, Any]) -> str:
    """sha256 of the endpoint path and the canonical JSON of the request body."""
    canonical = json.dumps({"path": path, "body": body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class ResponseCache:
    """Append-only JSONL of ``{"key": ..., "response": ...}``, loaded into memory on open.

    Each line is flushed as soon as its response arrives, so a crash loses at most the request
    in flight. A torn last line (killed mid-write) is dropped from the file on open; a bad line
    elsewhere is a DataError naming the line.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._entries: dict[str, Any] = {}
        if self.path.exists():
            self._load()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def _load(self) -> None:
        text = self.path.read_text(encoding="utf-8")
        lines = text.split("\n")
        last_content = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                self._entries[entry["key"]] = entry["response"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                if number - 1 == last_content:
                    logger.warning("%s:%d: dropping a torn last cache line", self.path, number)
                    self._rewrite(lines[: number - 1])
                    return
                raise DataError(
                    f"corrupt cache line ({exc}); delete the line or the file",
                    source=str(self.path),
                    line=number,
                ) from exc
        if text and not text.endswith("\n"):
            # Complete JSON but no newline: start the next append on a fresh line.
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write("\n")

    def _rewrite(self, lines: list[str]) -> None:
        """Replace the file with ``lines`` (atomically), so a torn line never ends up mid-file."""
        kept = "".join(line + "\n" for line in lines if line.strip())
        atomic_write_text(self.path, kept)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Any | None:
        with self._lock:
            return self._entries.get(key)

    def put(self, key: str, response: Any) -> None:
        line = json.dumps({"key": key, "response": response}, ensure_ascii=False)
        with self._lock:
            self._entries[key] = response
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
                handle.flush()


@dataclass(frozen=True)
class _Request:
    """One HTTP call: ``owner`` is the index of the chat/prompt it samples for."""

    owner: int
    path: str
    body: dict[str, Any]
    expected_choices: int
    key: str


def _normalise_base_url(base_url: str) -> str:
    """Strip the trailing slash; a bare host gets ``/v1`` (OpenAI client convention)."""
    parsed = urllib.parse.urlparse(base_url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"expected an http(s) URL, got {base_url!r}", field="base_url")
    url = base_url.rstrip("/")
    if parsed.path in ("", "/"):
        url += "/v1"
    return url


def _describe_network_error(exc: BaseException, timeout_s: float) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"timed out after {timeout_s:g}s"
    return f"{type(reason).__name__}: {reason}"


class OpenAICompatibleGenerator:
    """``Generator`` over ``/chat/completions`` of an OpenAI-compatible server.

    ``base_url`` like ``http://127.0.0.1:8000/v1`` (a bare host gets ``/v1``); ``api_key_env``
    names the environment variable holding the key (None: no Authorization header, as local
    servers expect). ``timeout_s`` is the socket timeout per attempt; ``max_retries`` retries
    follow the first attempt, waiting ``backoff_s * 2**attempt`` (jittered, capped at
    ``max_backoff_s``). ``max_n_per_request`` splits ``num_samples`` over several requests for
    servers without ``n`` support (chunk ``i`` uses ``seed + i`` so samples differ).
    ``extra_body`` is merged into every request body last (it can override any field).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        concurrency: int = 8,
        cache_path: str | Path | None = None,
        max_n_per_request: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"must be >= 1, got {concurrency}", field="concurrency")
        if max_retries < 0:
            raise ConfigError(f"must be >= 0, got {max_retries}", field="max_retries")
        if max_n_per_request is not None and max_n_per_request < 1:
            raise ConfigError(f"must be >= 1, got {max_n_per_request}", field="max_n_per_request")
        self.base_url = _normalise_base_url(base_url)
        self.model = model
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.concurrency = concurrency
        self.max_n_per_request = max_n_per_request
        self.extra_body = dict(extra_body or {})
        self.cache = ResponseCache(cache_path) if cache_path is not None else None
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key_env is not None:
            api_key = os.environ.get(api_key_env, "")
            if not api_key:
                raise ConfigError(
                    f"environment variable {api_key_env} is not set or empty", field="api_key_env"
                )
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._jitter = random.Random()
        self._stats_lock = threading.Lock()
        self.stats = {"http_requests": 0, "cache_hits": 0, "retries": 0}

    def __repr__(self) -> str:
        # Never print the key.
        return f"OpenAICompatibleGenerator(base_url={self.base_url!r}, model={self.model!r})"

    # --- public API ---------------------------------------------------------------------------

    def chat(self, chats: list[Chat], params: GenerationParams) -> list[list[Generation]]:
        """One list of ``params.num_samples`` generations per chat, in input order."""
        bodies = [{"model": self.model, "messages": [dict(m) for m in chat]} for chat in chats]
        return self._generate("/chat/completions", bodies, params, text_of=_chat_choice_text)

    def complete(self, prompts: Sequence[str], params: GenerationParams) -> list[list[Generation]]:
        """Plain-text continuation over ``/completions`` (base models, paper-style prompts)."""
        bodies = [{"model": self.model, "prompt": prompt} for prompt in prompts]
        return self._generate("/completions", bodies, params, text_of=_completion_choice_text)

    # --- request assembly ---------------------------------------------------------------------

    def _sampling_fields(self, params: GenerationParams, n: int, seed: int) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "n": n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_new_tokens,
            "seed": seed,
        }
        if params.stop:
            fields["stop"] = list(params.stop)
        if params.top_k > 0:
            fields["top_k"] = params.top_k
        if params.repetition_penalty != 1.0:
            fields["repetition_penalty"] = params.repetition_penalty
        return fields

    def _requests_for(
        self, path: str, bodies: list[dict[str, Any]], params: GenerationParams
    ) -> list[_Request]:
        if params.num_samples < 1:
            raise ConfigError(f"must be >= 1, got {params.num_samples}", field="num_samples")
        chunk = self.max_n_per_request or params.num_samples
        requests: list[_Request] = []
        for owner, base in enumerate(bodies):
            remaining, chunk_index = params.num_samples, 0
            while remaining > 0:
                n = min(chunk, remaining)
                body = {
                    **base,
                    **self._sampling_fields(params, n, params.seed + chunk_index),
                    **self.extra_body,
                }
                requests.append(_Request(owner, path, body, n, request_cache_key(path, body)))
                remaining -= n
                chunk_index += 1
        return requests

    def _generate(
        self,
        path: str,
        bodies: list[dict[str, Any]],
        params: GenerationParams,
        *,
        text_of: Callable[[Mapping[str, Any]], str],
    ) -> list[list[Generation]]:
        requests = self._requests_for(path, bodies, params)
        unique: dict[str, _Request] = {}
        for request in requests:
            unique.setdefault(request.key, request)
        responses = self._fetch_all(list(unique.values()))
        results: list[list[Generation]] = [[] for _ in bodies]
        for request in requests:
            choices = _choices_of(responses[request.key], self.base_url + path)
            if len(choices) < request.expected_choices:
                raise AlignkitError(
                    f"asked for n={request.expected_choices} samples, the server returned {len(choices)}; "
                    "set max_n_per_request=1 for servers without n support",
                    source=self.base_url + path,
                )
            for choice in choices[: request.expected_choices]:
                stopped, reason = finish_reason_to_stopped(choice.get("finish_reason"))
                results[request.owner].append(
                    Generation(text=text_of(choice), stopped=stopped, finish_reason=reason)
                )
        return results

    # --- transport ----------------------------------------------------------------------------

    def _fetch_all(self, requests: list[_Request]) -> dict[str, Any]:
        """Response JSON per request key: cache first, then the network with ``concurrency`` threads."""
        responses: dict[str, Any] = {}
        missing: list[_Request] = []
        for request in requests:
            cached = self.cache.get(request.key) if self.cache is not None else None
            if cached is not None:
                responses[request.key] = cached
                self._count("cache_hits")
            else:
                missing.append(request)
        if len(missing) <= 1 or self.concurrency == 1:
            for request in missing:
                responses[request.key] = self._fetch(request)
            return responses
        executor = ThreadPoolExecutor(max_workers=min(self.concurrency, len(missing)))
        try:
            futures = [(request.key, executor.submit(self._fetch, request)) for request in missing]
            for key, future in futures:
                responses[key] = future.result()
        finally:
            # On failure: drop queued requests; the ones in flight finish and land in the cache.
            executor.shutdown(wait=True, cancel_futures=True)
        return responses

    def _fetch(self, request: _Request) -> Any:
        response = self._post(request.path, request.body)
        _choices_of(response, self.base_url + request.path)  # validate before caching
        if self.cache is not None:
            self.cache.put(request.key, response)
        return response

    def _count(self, name: str) -> None:
        with self._stats_lock:
            self.stats[name] += 1

    def _backoff_delay(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.max_backoff_s, self.backoff_s * 2**attempt)
        # Jitter spreads retries of concurrent workers so they do not hit the server in lockstep.
        delay *= 0.5 + 0.5 * self._jitter.random()
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_backoff_s))
        return delay

    def _post(self, path: str, body: Mapping[str, Any]) -> Any:
        """POST with retries; returns the decoded JSON or raises AlignkitError."""
        url = self.base_url + path
        data = json.dumps(body).encode()
        last_error = "no attempt made"
        for attempt in range(self.max_retries + 1):
            retry_after: float | None = None
            self._count("http_requests")
            request = urllib.request.Request(url, data=data, headers=self._headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
                    payload = reply.read()
            except urllib.error.HTTPError as exc:
                message = exc.read().decode("utf-8", "replace")[:_ERROR_BODY_CHARS]
                if exc.code != _TOO_MANY_REQUESTS and exc.code < _RETRY_STATUS_MIN:
                    raise AlignkitError(f"HTTP {exc.code}: {message}", source=url) from exc
                last_error = f"HTTP {exc.code}: {message}"
                retry_after = _parse_retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                last_error = _describe_network_error(exc, self.timeout_s)
            else:
                try:
                    return json.loads(payload)
                except json.JSONDecodeError as exc:
                    raise AlignkitError(
                        f"server replied with invalid JSON: {payload[:200]!r}", source=url
                    ) from exc
            if attempt < self.max_retries:
                delay = self._backoff_delay(attempt, retry_after)
                logger.warning(
                    "%s: %s; retry %d/%d in %.2fs", url, last_error, attempt + 1, self.max_retries, delay
                )
                self._count("retries")
                time.sleep(delay)
        raise AlignkitError(f"request failed after {self.max_retries + 1} attempts: {last_error}", source=url)


def _parse_retry_after(value: str | None) -> float | None:
    # Only the delta-seconds form; an HTTP date falls back to our own backoff.
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _choices_of(response: Any, url: str) -> list[dict[str, Any]]:
    """The ``choices`` of a response, sorted by ``index``; AlignkitError when malformed."""
    choices = response.get("choices") if isinstance(response, dict) else None
    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
        raise AlignkitError(f"response has no 'choices' list: {str(response)[:200]}", source=url)
    try:
        return sorted(choices, key=lambda choice: int(choice.get("index", 0)))
    except (TypeError, ValueError) as exc:
        raise AlignkitError(f"response has a non-integer choice index: {exc}", source=url) from exc


def _chat_choice_text(choice: Mapping[str, Any]) -> str:
    message = choice.get("message") or {}
    return str(message.get("content") or "")


def _completion_choice_text(choice: Mapping[str, Any]) -> str:
    return str(choice.get("text") or "")
