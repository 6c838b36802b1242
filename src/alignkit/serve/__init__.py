"""``alignkit serve``: an OpenAI-compatible server for a model and its named adapters, with a chat page.

Needs the ``alignkit[serve]`` extra (fastapi, uvicorn, sse-starlette).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alignkit.config.serve import ServeConfig
from alignkit.data.dataset import resolve_chat_template
from alignkit.errors import AlignkitError
from alignkit.guard.checks import Guard
from alignkit.models.loader import load_from_fields
from alignkit.result import CommandResult
from alignkit.retrieval.search import Retriever


def _require_extra() -> None:
    missing = []
    for module in ("fastapi", "uvicorn", "sse_starlette"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise AlignkitError(f"alignkit serve needs {', '.join(missing)}: pip install 'alignkit[serve]'")


def base_name_of(cfg: ServeConfig) -> str:
    """The base model's served name: ``name``, else the spec's last path part (``embedded``, ``model.gguf``)."""
    return cfg.name or Path(cfg.model.rstrip("/")).name or cfg.model


def build(cfg: ServeConfig) -> tuple[Any, Any]:
    """The engine and the app for ``cfg`` (model loaded, adapters attached)."""
    import torch

    # Imported at the server's start-up only: they need fastapi/uvicorn (the alignkit[serve] extra), which
    # _require_extra reports in one line when missing; importing alignkit.serve must not fail on them.
    from alignkit.serve.app import create_app  # start-up (serve extra)
    from alignkit.serve.engine import Engine  # start-up (serve extra)
    from alignkit.serve.server import read_api_key  # start-up (serve extra)

    api_key = read_api_key(cfg.api_key_file)
    # Retrieval and the guard load before the model, so a wrong path fails in a second, not after it.
    retriever = Retriever(cfg.rag.index) if cfg.rag is not None else None
    guard = Guard.from_file(cfg.guard) if cfg.guard else None
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    loaded = load_from_fields(cfg)
    engine = Engine(loaded.model, loaded.tokenizer, limits=cfg.limits, adapters=cfg.adapters,
                    chat_template=resolve_chat_template(cfg.chat_template))
    if base_name_of(cfg) in engine.adapter_names:
        raise AlignkitError(f"an adapter is named like the base model ({base_name_of(cfg)!r}); rename it",
                            field="adapters")
    return engine, create_app(engine, base_name=base_name_of(cfg), api_key=api_key, retriever=retriever, rag=cfg.rag,
                              guard=guard)


def serve_main(cfg: ServeConfig, echo: Callable[[str], None] = print) -> int:
    """Serves until interrupted; with ``cfg.check``, runs the check on a free loopback port and exits."""
    _require_extra()
    # start-up of the server only (the serve extra, see build)
    from alignkit.serve.server import BackgroundServer, bind_socket, check_bind, read_api_key, serve_forever

    check_bind(cfg)
    read_api_key(cfg.api_key_file)  # a bad key file fails before the model loads
    engine, app = build(cfg)
    try:
        if cfg.check:
            # start-up of the check only (the serve extra, see build)
            from alignkit.serve.check import run_check

            with BackgroundServer(app, bind_socket("127.0.0.1", 0)) as server:
                return run_check(engine, server.url, base_name=base_name_of(cfg), prompts=cfg.check_prompts,
                                 max_tokens=cfg.check_max_tokens, api_key=read_api_key(cfg.api_key_file), echo=echo)
        serve_forever(app, bind_socket(cfg.host, cfg.port), announce=echo)
        return 0
    finally:
        engine.close()


def serve_command(cfg: ServeConfig, progress: Callable[[str], None]) -> CommandResult:
    """The ``serve`` command of the registry: serves until interrupted, or runs ``--check`` and exits."""
    return CommandResult(code=serve_main(cfg, echo=lambda line: print(line, flush=True)))
