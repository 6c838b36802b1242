"""The model behind the server: requests wait in a bounded queue, one worker thread generates.

The worker takes the oldest request; a greedy one waits ``batch_window_ms`` for other greedy
requests with the same adapter and settings and runs them all in one ``generate_ids`` call (greedy
replies do not depend on what shares the batch, up to padding). A sampled request runs alone, so
its ``seed`` gives the same reply whatever else is queued. Adapters are PEFT adapters loaded side
by side on the one base model; the base is served with the adapters disabled.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Hashable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from alignkit.config.serve import ServeLimits
from alignkit.errors import ModelError
from alignkit.generation.local import LocalGenerator, TokenCallback
from alignkit.generation.types import Generation, GenerationParams
from alignkit.models.adapters import peft_wrapping

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """More requests are waiting than ``limits.max_queue`` allows."""


class RequestTimedOut(Exception):
    """A request was not answered within ``limits.request_timeout_s``."""


@dataclass
class Job:
    """One request's prompts (token ids) and settings; ``future`` receives its generations."""

    prompts: list[list[int]]
    params: GenerationParams
    adapter: str | None
    deadline: float
    on_token: TokenCallback | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    future: Future[list[list[Generation]]] = field(default_factory=Future)

    @property
    def rows(self) -> int:
        return len(self.prompts) * self.params.num_samples

    def batch_key(self) -> Hashable | None:
        """Jobs with equal keys may share a generate call; None: this job runs alone."""
        if self.params.temperature > 0:
            return None
        return (self.adapter, replace(self.params, seed=0))

    def gone(self) -> bool:
        return self.cancelled.is_set() or time.monotonic() > self.deadline


def load_adapters(model: Any, adapters: dict[str, str]) -> Any:
    """Wraps ``model`` with every named adapter folder (a PeftModel), or returns it unchanged."""
    if not adapters:
        return model
    from peft import PeftModel


    wrapped: Any = None
    for name, folder in adapters.items():
        if not (Path(folder) / "adapter_config.json").is_file():
            raise ModelError(f"{folder} is not a PEFT adapter folder (no adapter_config.json)", field=f"adapters.{name}")
        try:
            with peft_wrapping():
                if wrapped is None:
                    wrapped = PeftModel.from_pretrained(model, folder, adapter_name=name)
                else:
                    wrapped.load_adapter(folder, adapter_name=name)
        except (RuntimeError, ValueError) as exc:  # shapes of another base model, a bad config
            raise ModelError(f"{folder} does not fit the base model: {str(exc).splitlines()[0]}",
                             field=f"adapters.{name}") from None
    wrapped.eval()
    return wrapped


class Engine:
    """Generation for the server: a bounded queue, micro-batching, adapters by name."""

    def __init__(self, model: Any, tokenizer: Any, *, limits: ServeLimits, adapters: dict[str, str] | None = None,
                 chat_template: str | None = None) -> None:
        self.adapter_names = list(adapters or {})
        self.model = load_adapters(model, adapters or {})
        self.model.eval()
        self.tokenizer = tokenizer
        self.chat_template = chat_template
        self.limits = limits
        self.generator = LocalGenerator(self.model, tokenizer, batch_size=limits.max_batch, chat_template=chat_template)
        # One generate call at a time: adapter switching and the model's caches are not thread-safe.
        self.model_lock = threading.Lock()
        self.generate_calls = 0
        self.requests_run = 0
        self.submitted = 0
        self._queue: deque[Job] = deque()
        self._wakeup = threading.Condition()
        self._closed = False
        self._recent_seconds = 1.0
        self._worker = threading.Thread(target=self._loop, name="alignkit-serve-worker", daemon=True)
        self._worker.start()

    @property
    def stop_ids(self) -> list[int]:
        return self.generator.stop_ids

    def submit(self, job: Job) -> Future[list[list[Generation]]]:
        with self._wakeup:
            if self._closed:
                raise RuntimeError("the engine is closed")
            if len(self._queue) >= self.limits.max_queue:
                raise QueueFull
            self._queue.append(job)
            self.submitted += 1
            self._wakeup.notify()
        return job.future

    @property
    def queued(self) -> int:
        """Requests waiting for the model (not counting the ones generating)."""
        with self._wakeup:
            return len(self._queue)

    def retry_after_s(self) -> int:
        """A hint for 429's Retry-After: about how long the queue takes to drain, at least 1 s."""
        with self._wakeup:
            waiting = len(self._queue)
        return max(1, round(self._recent_seconds * (1 + waiting // max(1, self.limits.max_batch))))

    def generate(self, prompts: list[list[int]], params: GenerationParams, adapter: str | None = None) -> list[list[Generation]]:
        """In-process generation with the adapter selected the same way as for a request (no queue)."""
        with self.model_lock, self._adapter(adapter):
            return self.generator.generate_ids(prompts, params)

    def close(self) -> None:
        with self._wakeup:
            self._closed = True
            pending = list(self._queue)
            self._queue.clear()
            self._wakeup.notify_all()
        for job in pending:
            job.future.set_exception(RuntimeError("the server is shutting down"))
        self._worker.join(timeout=30)

    @contextlib.contextmanager
    def _adapter(self, name: str | None) -> Iterator[None]:
        if not self.adapter_names:
            yield
        elif name is None:
            with self.model.disable_adapter():
                yield
        else:
            self.model.set_adapter(name)
            yield

    def _next_batch(self) -> list[Job] | None:
        with self._wakeup:
            while not self._queue and not self._closed:
                self._wakeup.wait()
            if self._closed:
                return None
            first = self._queue.popleft()
            batch = [first]
            key = first.batch_key()
            if key is None:
                return batch
            rows = first.rows
            until = time.monotonic() + self.limits.batch_window_ms / 1000
            while rows < self.limits.max_batch:
                for job in list(self._queue):
                    if job.batch_key() == key and rows + job.rows <= self.limits.max_batch:
                        self._queue.remove(job)
                        batch.append(job)
                        rows += job.rows
                remaining = until - time.monotonic()
                if remaining <= 0 or self._closed:
                    break
                self._wakeup.wait(remaining)
            return batch

    def _loop(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._run(batch)

    @staticmethod
    def _drop_gone(jobs: list[Job]) -> list[Job]:
        """Answers the jobs whose client left or whose deadline passed; returns the others."""
        live = []
        for job in jobs:
            if job.cancelled.is_set():
                job.future.cancel()
            elif job.gone():
                job.future.set_exception(RequestTimedOut())
            else:
                live.append(job)
        return live

    def _run(self, jobs: list[Job]) -> None:
        with self.model_lock:
            # Checked again once the model is free: a client that left while waiting costs nothing.
            jobs = self._drop_gone(jobs)
            if not jobs:
                return
            owners = [(job, index) for job in jobs for index in range(len(job.prompts))]

            def on_token(prompt_index: int, sample_index: int, token: int) -> None:
                job, local = owners[prompt_index]
                if job.on_token is not None:
                    job.on_token(local, sample_index, token)

            started = time.monotonic()
            try:
                with self._adapter(jobs[0].adapter):
                    self.generate_calls += 1
                    results = self.generator.generate_ids(
                        [job.prompts[local] for job, local in owners], jobs[0].params, on_token=on_token,
                        cancelled=lambda prompt_index: owners[prompt_index][0].gone(),
                    )
            except Exception as exc:  # a bug or out of memory: answer every waiting client, keep serving
                log.exception("generation failed")
                for job in jobs:
                    job.future.set_exception(exc)
                return
        self._recent_seconds = 0.8 * self._recent_seconds + 0.2 * (time.monotonic() - started)
        cursor = 0
        for job in jobs:
            mine = results[cursor : cursor + len(job.prompts)]
            cursor += len(job.prompts)
            self.requests_run += 1
            if job.cancelled.is_set():
                job.future.cancel()
            elif any(g.finish_reason == "cancelled" for samples in mine for g in samples):
                job.future.set_exception(RequestTimedOut())
            else:
                job.future.set_result(mine)
