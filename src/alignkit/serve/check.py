"""``alignkit serve --check``: proves the server answers exactly what the model does in process.

1. The template: the prompt serving renders for a chat equals the prompt part of what training
   formats for the same chat with a reply (``format_chat``, up to the first trained token), and the
   template's end-of-turn token is in the stop set.
2. For each check prompt and each served model (the base and every adapter): a greedy reply in
   process (``Engine.generate``, no HTTP) and one over HTTP (``/v1/chat/completions``) agree in text,
   finish_reason and completion token count.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from typing import Any

from alignkit.data.formatting import format_chat, generation_prompt_ids, template_info
from alignkit.generation.types import GenerationParams
from alignkit.serve.engine import Engine


def _post(url: str, body: dict[str, Any], api_key: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())


def run_check(engine: Engine, base_url: str, *, base_name: str, prompts: list[str], max_tokens: int,
              api_key: str | None, echo: Callable[[str], None]) -> int:
    """0 when every check agrees, 1 otherwise; prints one line per check."""
    tokenizer = engine.tokenizer
    info = template_info(tokenizer, engine.chat_template)
    failures = 0
    chat = [{"role": "user", "content": prompts[0]}]
    served_prompt = generation_prompt_ids(tokenizer, chat, chat_template=engine.chat_template)
    trained = format_chat(tokenizer, [*chat, {"role": "assistant", "content": "ok"}], chat_template=engine.chat_template)
    trained_prompt = trained.input_ids[: trained.loss_mask.index(1)]
    same = served_prompt == trained_prompt
    failures += not same
    echo(f"{'ok  ' if same else 'FAIL'} template: serving renders {tokenizer.decode(served_prompt)!r} "
         f"({len(served_prompt)} tokens), {'equal to' if same else 'DIFFERENT from'} training's prompt")
    stop_names = [tokenizer.convert_ids_to_tokens(i) for i in engine.stop_ids]
    eot_stops = info.eot_id in engine.stop_ids
    failures += not eot_stops
    echo(f"{'ok  ' if eot_stops else 'FAIL'} stop set {stop_names} "
         f"{'holds' if eot_stops else 'LACKS'} the end-of-turn token {info.eot_token!r}")
    params = GenerationParams(max_new_tokens=max_tokens, temperature=0.0)
    for model_name in [base_name, *engine.adapter_names]:
        adapter = None if model_name == base_name else model_name
        for text in prompts:
            messages = [{"role": "user", "content": text}]
            local = engine.generate([generation_prompt_ids(tokenizer, messages, chat_template=engine.chat_template)],
                                    params, adapter)[0][0]
            reply = _post(f"{base_url}/v1/chat/completions",
                          {"model": model_name, "messages": messages, "temperature": 0, "max_tokens": max_tokens},
                          api_key)
            remote = reply["choices"][0]
            local_reason = "stop" if local.stopped else "length"
            agree = (remote["message"]["content"] == local.text and remote["finish_reason"] == local_reason
                     and reply["usage"]["completion_tokens"] == len(local.token_ids))
            failures += not agree
            echo(f"{'ok  ' if agree else 'FAIL'} {model_name} {text!r}: {local_reason}, {len(local.token_ids)} tokens "
                 f"{local.text[:60]!r}" + ("" if agree else f" but over HTTP {remote['finish_reason']}, "
                                                           f"{reply['usage']['completion_tokens']} tokens "
                                                           f"{remote['message']['content'][:60]!r}"))
    echo("check passed" if not failures else f"check FAILED: {failures} difference(s)")
    return 1 if failures else 0
