"""The FastAPI app: OpenAI's ``/v1/chat/completions``, ``/v1/completions`` and ``/v1/models``,
``/health``, and the chat page at ``/``.

Prompts are rendered by ``generation_prompt_ids``, the code training uses, and generation stops on
the engine's stop set (tokenizer EOS, generation-config EOS, the template's end-of-turn token).
Every error is OpenAI's ``{"error": {"message", "type", "param", "code"}}`` with a 4xx status for a
client mistake; a bug is a 500 with a fixed message, logged here, never a traceback to the client.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sse_starlette.sse import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from alignkit.config.rag import RagUseConfig
from alignkit.data.formatting import check_no_special_tokens, generation_prompt_ids, template_info
from alignkit.errors import AlignkitError
from alignkit.generation.text_stream import TextStream
from alignkit.generation.types import Generation, GenerationParams
from alignkit.guard.checks import Guard
from alignkit.guard.turn import CONTENT_FILTER, PreparedTurn, TurnResult, finish_turn, prepare_turn
from alignkit.retrieval.search import Retriever
from alignkit.serve.engine import Engine, Job, QueueFull, RequestTimedOut
from alignkit.serve.protocol import (
    ChatRequest,
    CompletionRequest,
    RequestError,
    chat_messages,
    finite,
    generation_params,
    parse,
)

log = logging.getLogger(__name__)
_DISCONNECT_POLL_S = 0.25
_STATUS_KIND = {401: "authentication_error", 404: "not_found_error", 408: "timeout_error", 413: "invalid_request_error",
                429: "rate_limit_error"}


@dataclass
class _Prepared:
    """A validated request: its prompts (token ids), settings and the adapter that serves it."""

    prompts: list[list[int]]
    params: GenerationParams
    adapter: str | None
    model_name: str
    turn: PreparedTurn | None = None  # chat requests with retrieval or a guard


def _read_page(name: str) -> str:
    return resources.files("alignkit.serve").joinpath("static", name).read_text(encoding="utf-8")


def _error_response(error: RequestError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def create_app(engine: Engine, *, base_name: str, api_key: str | None = None, retriever: Retriever | None = None,
               rag: RagUseConfig | None = None, guard: Guard | None = None) -> FastAPI:
    """The server's routes over ``engine``; ``api_key`` None means no key is asked for.

    With ``retriever`` and/or ``guard``, a chat request goes through ``guard.turn``'s two halves, as in
    ``alignkit chat``: input rules, retrieval into the system turn, generation, output rules per choice.
    Each choice carries the extension field ``alignkit`` (citations, verdicts, ``blocked_by``, ``rule``).
    A block is HTTP 200 with the refusal and ``finish_reason: content_filter`` (guard mode ``refuse``) or
    HTTP 400 with ``code: content_filter`` (mode ``error``). A stream whose answer has output rules to
    pass is held back until the reply is complete, then sent as one delta: a token already sent could
    not be taken back. ``/v1/completions`` takes raw text that no rule was written for, so a guarded
    server refuses it (400) rather than leave a way around the guard.
    """
    turned = retriever is not None or guard is not None
    buffer_streams = guard is not None and bool(guard.config.output)
    limits = engine.limits
    tokenizer = engine.tokenizer
    info = template_info(tokenizer, engine.chat_template)
    context_length = getattr(getattr(engine.model, "config", None), "max_position_embeddings", None)
    created = int(time.time())
    app = FastAPI(title="alignkit serve", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine = engine

    @app.exception_handler(RequestError)
    async def _on_request_error(request: Request, error: RequestError) -> JSONResponse:
        return _error_response(error)

    @app.exception_handler(StarletteHTTPException)
    async def _on_http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = "no such route" if error.status_code == 404 else str(error.detail)
        return _error_response(RequestError(message, status=error.status_code,
                                            kind=_STATUS_KIND.get(error.status_code, "invalid_request_error")))

    @app.exception_handler(Exception)
    async def _on_bug(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error serving %s", request.url.path)
        return _error_response(RequestError("internal server error", status=500, kind="server_error"))

    def authorize(request: Request) -> None:
        if api_key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), api_key.encode()):
            raise RequestError("missing or wrong API key (send Authorization: Bearer <key>)", status=401,
                               kind="authentication_error", code="invalid_api_key")

    async def read_json(request: Request) -> Any:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limits.max_body_bytes):
            raise RequestError(f"the request body exceeds {limits.max_body_bytes} bytes", status=413,
                               code="body_too_large")
        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > limits.max_body_bytes:
                    raise RequestError(f"the request body exceeds {limits.max_body_bytes} bytes", status=413,
                                       code="body_too_large")
        except ClientDisconnect:
            raise RequestError("client closed the request", status=499) from None
        try:
            return json.loads(bytes(body))
        except UnicodeDecodeError:
            raise RequestError("the request body is not UTF-8") from None
        except ValueError as exc:
            raise RequestError(f"the request body is not valid JSON: {exc}") from None
        except RecursionError:
            raise RequestError("the request body nests too deeply") from None

    def resolve_adapter(name: str | None) -> tuple[str | None, str]:
        if name is None or name == base_name:
            return None, base_name
        if name in engine.adapter_names:
            return name, name
        served = ", ".join([base_name, *engine.adapter_names])
        raise RequestError(f"the model {name!r} does not exist; this server has: {served}", status=404,
                           param="model", kind="not_found_error", code="model_not_found")

    def check_length(prompt: list[int], params: GenerationParams, param: str) -> None:
        if not prompt:
            raise RequestError("the prompt is empty", param=param)
        if len(prompt) > limits.max_prompt_tokens:
            raise RequestError(f"the prompt is {len(prompt)} tokens; this server takes at most "
                               f"{limits.max_prompt_tokens}", param=param, code="context_length_exceeded")
        if context_length is not None and len(prompt) + params.max_new_tokens > context_length:
            raise RequestError(f"the prompt ({len(prompt)} tokens) plus max_tokens ({params.max_new_tokens}) exceeds "
                               f"the model's context of {context_length} tokens", param=param,
                               code="context_length_exceeded")

    def prepare_chat(request: ChatRequest) -> _Prepared:
        adapter, model_name = resolve_adapter(request.model)
        params = generation_params(request, limits)
        messages = chat_messages(request)
        turn = None
        if turned:
            turn = prepare_turn(messages, retriever=retriever, rag=rag, guard=guard)
            if turn.blocked is not None:
                if guard is not None and guard.config.mode == "error":
                    raise content_filtered(turn.blocked)
                return _Prepared([], params, adapter, model_name, turn)
            messages = turn.messages
        try:
            check_no_special_tokens(messages, info)
            prompt = generation_prompt_ids(tokenizer, messages, chat_template=engine.chat_template)
        except AlignkitError as error:
            raise RequestError(error.message, param=error.field or "messages") from None
        check_length(prompt, params, "messages")
        return _Prepared([prompt], params, adapter, model_name, turn)

    def content_filtered(result: TurnResult) -> RequestError:
        where = "prompt" if result.blocked_by == "input" else "answer"
        return RequestError(f"the {where} was blocked by guard rule {result.rule!r}", code=CONTENT_FILTER,
                            param="messages")

    def finished(prepared: _Prepared, generations: list[list[Generation]]) -> list[TurnResult]:
        """Each choice after the output rules (one refusal when the prompt was blocked)."""
        turn = prepared.turn
        if turn is None:
            return [TurnResult(g.text, finish_reason(g)) for samples in generations for g in samples]
        if turn.blocked is not None:
            return [turn.blocked] * prepared.params.num_samples
        results = [finish_turn(turn, g.text, finish_reason(g), guard) for samples in generations for g in samples]
        blocked = next((r for r in results if r.blocked_by is not None), None)
        if blocked is not None and guard is not None and guard.config.mode == "error":
            raise content_filtered(blocked)
        return results

    def prepare_completion(request: CompletionRequest) -> _Prepared:
        adapter, model_name = resolve_adapter(request.model)
        params = generation_params(request, limits)
        texts = [request.prompt] if isinstance(request.prompt, str) else request.prompt
        if not texts or len(texts) * params.num_samples > limits.max_batch:
            raise RequestError(f"give 1 to {limits.max_batch} prompts (times n)", param="prompt")
        prompts = [list(tokenizer(text).input_ids) for text in texts]
        for index, prompt in enumerate(prompts):
            check_length(prompt, params, f"prompt[{index}]" if len(prompts) > 1 else "prompt")
        return _Prepared(prompts, params, adapter, model_name)

    def submit(job: Job) -> Future[list[list[Generation]]]:
        try:
            return engine.submit(job)
        except QueueFull:
            raise RequestError("the server is busy: too many requests waiting; retry later", status=429,
                               kind="rate_limit_error", code="queue_full",
                               headers={"Retry-After": str(engine.retry_after_s())}) from None

    async def wait_for(job: Job, request: Request) -> list[list[Generation]]:
        """The job's generations; stops it when the client goes away."""
        waiting = asyncio.wrap_future(job.future)
        try:
            while True:
                done, _ = await asyncio.wait({waiting}, timeout=_DISCONNECT_POLL_S)
                if done:
                    return waiting.result()
                if await request.is_disconnected():
                    job.cancelled.set()
                    raise RequestError("client closed the request", status=499)
        except RequestTimedOut:
            raise timed_out() from None
        finally:
            if not job.future.done():
                job.cancelled.set()

    def timed_out() -> RequestError:
        return RequestError(f"the request was not answered within {limits.request_timeout_s:g} s", status=408,
                            kind="timeout_error", code="request_timeout")

    def usage(prepared: _Prepared, generations: list[list[Generation]]) -> dict[str, int]:
        prompt_tokens = sum(len(p) for p in prepared.prompts)
        completion_tokens = sum(len(g.token_ids) for samples in generations for g in samples)
        return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens}

    def token_text(token_id: int) -> str:
        return tokenizer.decode([token_id], skip_special_tokens=False)

    def chat_logprobs(generation: Generation) -> dict[str, Any] | None:
        if generation.logprobs is None:
            return None
        entries = []
        for entry in generation.logprobs:
            text = token_text(entry.token_id)
            entries.append({"token": text, "logprob": finite(entry.logprob), "bytes": list(text.encode()),
                            "top_logprobs": [{"token": token_text(t), "logprob": finite(lp),
                                              "bytes": list(token_text(t).encode())} for t, lp in entry.top]})
        return {"content": entries}

    def completion_logprobs(generation: Generation) -> dict[str, Any] | None:
        if generation.logprobs is None:
            return None
        tokens = [token_text(entry.token_id) for entry in generation.logprobs]
        offsets, position = [], 0
        for text in tokens:
            offsets.append(position)
            position += len(text)
        return {"tokens": tokens, "token_logprobs": [finite(e.logprob) for e in generation.logprobs],
                "top_logprobs": [{token_text(t): finite(lp) for t, lp in e.top} for e in generation.logprobs],
                "text_offset": offsets}

    def finish_reason(generation: Generation) -> str:
        return "stop" if generation.stopped else "length"

    def stream_events(job: Job, prepared: _Prepared, *, chat: bool,
                      include_usage: bool) -> AsyncIterator[dict[str, str]]:
        """SSE events for one job; tokens arrive from the worker thread through an asyncio queue."""
        loop = asyncio.get_running_loop()
        arrivals: asyncio.Queue[tuple[int, int] | None] = asyncio.Queue()
        n = prepared.params.num_samples
        streams = [TextStream(lambda ids: tokenizer.decode(ids, skip_special_tokens=False),
                              prepared.params.stop, set(engine.stop_ids)) for _ in range(len(prepared.prompts) * n)]

        def on_token(prompt_index: int, sample_index: int, token: int) -> None:
            loop.call_soon_threadsafe(arrivals.put_nowait, (prompt_index * n + sample_index, token))

        job.on_token = on_token
        job.future.add_done_callback(lambda _: loop.call_soon_threadsafe(arrivals.put_nowait, None))
        response_id = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        kind = "chat.completion.chunk" if chat else "text_completion"

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, str]:
            body = {"id": response_id, "object": kind, "created": int(time.time()), "model": prepared.model_name,
                    "choices": choices, **extra}
            if include_usage and "usage" not in extra:
                body["usage"] = None
            return {"data": json.dumps(body)}

        def choice(index: int, text: str | None, reason: str | None = None, role: bool = False) -> dict[str, Any]:
            if not chat:
                return {"index": index, "text": text or "", "logprobs": None, "finish_reason": reason}
            delta: dict[str, Any] = {"role": "assistant", "content": ""} if role else {}
            if text:
                delta["content"] = text
            return {"index": index, "delta": delta, "logprobs": None, "finish_reason": reason}

        async def events() -> AsyncIterator[dict[str, str]]:
            try:
                if chat:
                    yield chunk([choice(i, None, role=True) for i in range(len(streams))])
                while (item := await arrivals.get()) is not None:
                    index, token = item
                    if delta := streams[index].add(token):
                        yield chunk([choice(index, delta)])
                try:
                    generations = job.future.result()
                except RequestTimedOut:
                    yield {"data": json.dumps(timed_out().body())}
                    return
                except (CancelledError, RuntimeError) as exc:
                    yield {"data": json.dumps(RequestError(str(exc) or "cancelled", status=503,
                                                           kind="server_error").body())}
                    return
                flat = [g for samples in generations for g in samples]
                for index, generation in enumerate(flat):
                    rest = streams[index].finish(generation.text)
                    last = choice(index, rest, finish_reason(generation))
                    if prepared.turn is not None:  # retrieval (citations) or input rules only: nothing to hold back
                        last["alignkit"] = finish_turn(prepared.turn, generation.text, finish_reason(generation),
                                                       guard).extension()
                    yield chunk([last])
                if include_usage:
                    yield chunk([], usage=usage(prepared, generations))
                yield {"data": "[DONE]"}
            finally:
                # The client went away mid-stream (or the stream ended): stop generating for it.
                if not job.future.done():
                    job.cancelled.set()

        return events()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse(_read_page("index.html"))

    @app.get("/chat.js")
    async def page_script() -> Response:
        return Response(_read_page("chat.js"), media_type="text/javascript")

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        authorize(request)
        entries = [{"id": base_name, "object": "model", "created": created, "owned_by": "alignkit", "parent": None}]
        entries += [{"id": name, "object": "model", "created": created, "owned_by": "alignkit", "parent": base_name}
                    for name in engine.adapter_names]
        return {"object": "list", "data": entries}

    async def complete(request: Request, *, chat: bool) -> Response:
        authorize(request)
        body = await read_json(request)
        parsed = parse(ChatRequest if chat else CompletionRequest, body)
        if not chat and guard is not None:
            raise RequestError("this server guards chat requests; use /v1/chat/completions", param="prompt",
                               code=CONTENT_FILTER)
        prepared = prepare_chat(parsed) if chat else prepare_completion(parsed)
        if prepared.turn is not None and (prepared.turn.blocked is not None or (parsed.stream and buffer_streams)):
            return await guarded_reply(prepared, parsed, request)
        job = Job(prepared.prompts, prepared.params, prepared.adapter,
                  deadline=time.monotonic() + limits.request_timeout_s)
        if parsed.stream:
            include_usage = bool(parsed.stream_options and parsed.stream_options.include_usage)
            events = stream_events(job, prepared, chat=chat, include_usage=include_usage)
            submit(job)
            return EventSourceResponse(events, ping=15, sep="\n")
        submit(job)
        generations = await wait_for(job, request)
        flat = [g for samples in generations for g in samples]
        if chat:
            results = finished(prepared, generations)
            choices = [{"index": i, "message": {"role": "assistant", "content": r.text},
                        "logprobs": None if r.blocked_by else chat_logprobs(g), "finish_reason": r.finish_reason}
                       for i, (g, r) in enumerate(zip(flat, results, strict=True))]
            if prepared.turn is not None:
                for entry, result in zip(choices, results, strict=True):
                    entry["alignkit"] = result.extension()
        else:
            choices = [{"index": i, "text": g.text, "logprobs": completion_logprobs(g),
                        "finish_reason": finish_reason(g)} for i, g in enumerate(flat)]
        return JSONResponse({"id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}",
                             "object": "chat.completion" if chat else "text_completion", "created": int(time.time()),
                             "model": prepared.model_name, "choices": choices, "usage": usage(prepared, generations)})

    async def guarded_reply(prepared: _Prepared, parsed: Any, request: Request) -> Response:
        """A refused prompt (no generation), or a stream held back for the output rules: the whole reply
        is generated, checked, then sent (as one response, or as a stream of one delta per choice)."""
        generations: list[list[Generation]] = []
        if prepared.turn is not None and prepared.turn.blocked is None:
            job = Job(prepared.prompts, prepared.params, prepared.adapter,
                      deadline=time.monotonic() + limits.request_timeout_s)
            submit(job)
            generations = await wait_for(job, request)
        results = finished(prepared, generations)
        response_id = f"chatcmpl-{uuid.uuid4().hex}"
        counts = usage(prepared, generations)
        if not parsed.stream:
            choices = [{"index": i, "message": {"role": "assistant", "content": r.text}, "logprobs": None,
                        "finish_reason": r.finish_reason, "alignkit": r.extension()} for i, r in enumerate(results)]
            return JSONResponse({"id": response_id, "object": "chat.completion", "created": int(time.time()),
                                 "model": prepared.model_name, "choices": choices, "usage": counts})
        include_usage = bool(parsed.stream_options and parsed.stream_options.include_usage)

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, str]:
            body = {"id": response_id, "object": "chat.completion.chunk", "created": int(time.time()),
                    "model": prepared.model_name, "choices": choices, **extra}
            if include_usage and "usage" not in extra:
                body["usage"] = None
            return {"data": json.dumps(body)}

        async def events() -> AsyncIterator[dict[str, str]]:
            yield chunk([{"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                          "finish_reason": None} for i in range(len(results))])
            for i, result in enumerate(results):
                yield chunk([{"index": i, "delta": {"content": result.text}, "logprobs": None,
                              "finish_reason": result.finish_reason, "alignkit": result.extension()}])
            if include_usage:
                yield chunk([], usage=counts)
            yield {"data": "[DONE]"}

        return EventSourceResponse(events(), ping=15, sep="\n")

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await complete(request, chat=True)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await complete(request, chat=False)

    return app
