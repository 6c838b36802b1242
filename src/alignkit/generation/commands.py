"""``alignkit generate`` and ``alignkit chat``: a model's replies with its own chat template."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from alignkit.config.base import config_to_yaml
from alignkit.config.commands import ChatConfig, GenerateConfig
from alignkit.data.dataset import resolve_chat_template
from alignkit.data.formatting import generation_prompt_ids
from alignkit.data.prompts import read_prompt_chats
from alignkit.errors import AlignkitError
from alignkit.generation.local import LocalGenerator
from alignkit.generation.text_stream import TextStream
from alignkit.generation.types import Chat, GenerationParams
from alignkit.guard.checks import Guard
from alignkit.guard.turn import CONTENT_FILTER, guarded_turn
from alignkit.io import atomic_write_text
from alignkit.models.loader import load_from_fields
from alignkit.result import CommandResult, say
from alignkit.retrieval.search import Retriever

INTERRUPTED = "interrupted"  # a reply the user stopped with Ctrl-C
CHAT_HELP = "/reset clears the history, /exit (or Ctrl-D) quits, /help shows this; Ctrl-C stops a reply"


def generate_prompts(cfg: GenerateConfig) -> list[Chat]:
    """The prompts given as words, then those of ``prompts_file``; ``system`` before plain prompts."""
    system: Chat = [{"role": "system", "content": cfg.system}] if cfg.system else []
    chats = [[*system, {"role": "user", "content": prompt}] for prompt in cfg.prompts]
    if cfg.prompts_file:
        chats += read_prompt_chats(cfg.prompts_file, system=cfg.system)
    if not chats:
        raise AlignkitError("no prompts: give them as arguments or with prompts_file=PATH", field="prompts")
    return chats


def generate_command(cfg: GenerateConfig, progress: Callable[[str], None] | None = None) -> CommandResult:
    chats = generate_prompts(cfg)
    loaded = load_from_fields(cfg)
    generator = LocalGenerator(loaded.model, loaded.tokenizer, batch_size=cfg.batch_size,
                               chat_template=resolve_chat_template(cfg.chat_template))
    outputs = generator.chat(chats, GenerationParams.from_section(cfg.generation))
    rows: list[dict[str, Any]] = [
        {"messages": chat, "reply": g.text, "stopped": g.stopped, "finish_reason": g.finish_reason,
         "tokens": len(g.token_ids)}
        for chat, gens in zip(chats, outputs, strict=True) for g in gens
    ]
    if cfg.out:
        atomic_write_text(cfg.out, "".join(json.dumps(row) + "\n" for row in rows))
        atomic_write_text(str(cfg.out) + ".config.yaml", config_to_yaml(cfg))
        return CommandResult(output=cfg.out, show=say(f"wrote {len(rows)} replies to {cfg.out}"))
    for row in rows:
        flag = "" if row["stopped"] else "  [cut at max_new_tokens]"
        print(f">>> {row['messages'][-1]['content']}\n{row['reply']}{flag}\n")
    return CommandResult()


def _line_editing() -> None:
    """Arrow keys and history at the ``you>`` prompt: ``input`` uses readline once it is imported."""
    # Not on every platform (Windows): there the prompt works without editing.
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401


def chat_command(cfg: ChatConfig, progress: Callable[[str], None] | None = None) -> CommandResult:
    """The terminal chat loop: replies stream token by token; with ``rag`` the top chunks for each line go
    into the system turn, with ``guard`` its input rules run on each line and its output rules on each reply
    (which is then shown once it has passed them: a printed token cannot be taken back)."""
    _line_editing()
    # Retrieval and the guard load before the model, so a wrong path fails in a second, not after it.
    retriever = Retriever(cfg.rag.index) if cfg.rag is not None else None
    guard = Guard.from_file(cfg.guard) if cfg.guard else None
    loaded = load_from_fields(cfg)
    tokenizer = loaded.tokenizer
    generator = LocalGenerator(loaded.model, tokenizer, batch_size=1)
    streaming = guard is None or not guard.config.output
    history: list[dict[str, str]] = [{"role": "system", "content": cfg.system}] if cfg.system else []
    params = GenerationParams.from_section(cfg.generation)
    turn = 0
    out = sys.stdout

    def generate(messages: list[dict[str, str]]) -> tuple[str, str]:
        seeded = replace(params, seed=params.seed + turn)
        if not streaming:
            reply = generator.chat([messages], seeded)[0][0]
            return reply.text, reply.finish_reason
        shown = TextStream(lambda ids: tokenizer.decode(ids, skip_special_tokens=False), seeded.stop,
                           set(generator.stop_ids))

        def on_token(_prompt: int, _sample: int, token: int) -> None:
            out.write(shown.add(token))
            out.flush()

        out.write("bot> ")
        try:
            reply = generator.generate_ids([generation_prompt_ids(tokenizer, messages)], seeded,
                                           on_token=on_token)[0][0]
        except KeyboardInterrupt:  # Ctrl-C stops this reply; the chat goes on with what was shown
            return shown.sent, INTERRUPTED
        out.write(shown.finish(reply.text))
        return reply.text, reply.finish_reason

    while True:
        try:
            line = input("you> ")
        except EOFError:
            return CommandResult()
        except KeyboardInterrupt:
            out.write("\n(" + CHAT_HELP + ")\n")
            continue
        command = line.strip()
        if command in ("/exit", "/quit"):
            return CommandResult()
        if command == "/reset":
            history = history[:1] if cfg.system else []
            continue
        if command in ("/help", "/?"):
            out.write(CHAT_HELP + "\n")
            continue
        if command.startswith("/"):
            out.write(f"unknown command {command.split()[0]!r}: {CHAT_HELP}\n")
            continue
        turn += 1
        result = guarded_turn([*history, {"role": "user", "content": line}], generate, retriever=retriever,
                              rag=cfg.rag, guard=guard)
        if result.blocked_by != "input":  # a blocked prompt is not kept: the next turn starts clean
            history += [{"role": "user", "content": line}, {"role": "assistant", "content": result.text}]
        note = {"length": " [cut]", INTERRUPTED: " [stopped]",
                CONTENT_FILTER: f" [blocked: {result.rule}]"}.get(result.finish_reason, "")
        # A streamed reply is on the screen already; a refused or guarded one is shown whole.
        printed = streaming and result.blocked_by is None
        out.write(f"{'' if printed else 'bot> ' + result.text}{note}\n")
        if result.citations:
            out.write("     sources: " + ", ".join(c["id"] for c in result.citations) + "\n")
        out.flush()
