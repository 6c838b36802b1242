"""An Ollama Modelfile whose TEMPLATE renders conversations exactly as the trained Jinja template does.

Ollama runs Go templates, not Jinja, so the chat template cannot be copied over. Most chat templates
(ChatML, Llama 3, Zephyr, ...) wrap each message in a fixed prefix and suffix per role, print an
optional constant head, may insert a default system message, and end with a generation prompt. We
render the Jinja template on marker conversations, read those pieces off, and check that they rebuild
the Jinja output of several other conversations exactly; a template that is not of that shape is a
one-line error (``modelfile=false`` exports the GGUF alone), never a Modelfile that formats differently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alignkit.errors import ModelError

_SYSTEM, _USER, _ASSISTANT = "\u27e6sys-0\u27e7", "\u27e6user-0\u27e7", "\u27e6reply-0\u27e7"
_USER_2, _ASSISTANT_2 = "\u27e6user-1\u27e7", "\u27e6reply-1\u27e7"


@dataclass(frozen=True)
class RoleWrapping:
    """The text around each message: ``head + [prefix(role) + content + suffix(role)]... + generation``."""

    head: str
    system: tuple[str, str]
    user: tuple[str, str]
    assistant: tuple[str, str]
    generation_prompt: str
    default_system: str | None

    def render(self, messages: list[dict[str, str]], *, add_generation_prompt: bool) -> str:
        """What the Modelfile's TEMPLATE produces (Ollama puts SYSTEM first when no system message is given)."""
        if self.default_system is not None and (not messages or messages[0]["role"] != "system"):
            messages = [{"role": "system", "content": self.default_system}, *messages]
        wrap = {"system": self.system, "user": self.user, "assistant": self.assistant}
        body = "".join(wrap[m["role"]][0] + m["content"] + wrap[m["role"]][1] for m in messages)
        return self.head + body + (self.generation_prompt if add_generation_prompt else "")


def _between(text: str, start: str | None, end: str | None) -> str:
    begin = 0 if start is None else text.index(start) + len(start)
    return text[begin:] if end is None else text[begin:text.index(end, begin)]


def _unwrappable(reason: str) -> ModelError:
    return ModelError(f"the chat template cannot be written as an Ollama TEMPLATE ({reason}); "
                      "set modelfile=false to export the GGUF alone", field="chat_template")


def role_wrapping(tokenizer: Any, chat_template: str | None = None) -> RoleWrapping:
    """Reads the per-role wrapping off the Jinja template and checks it on other conversations."""
    def render(messages: list[dict[str, str]], generation: bool = False) -> str:
        try:
            return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation,
                                                     chat_template=chat_template))
        except Exception as exc:  # jinja raises for conversations a template refuses (e.g. a system turn)
            raise _unwrappable(f"it refused a test conversation: {exc}") from None

    system, user, reply = ({"role": r, "content": c} for r, c in
                           (("system", _SYSTEM), ("user", _USER), ("assistant", _ASSISTANT)))
    try:
        alone = render([system])
        full = render([system, user, reply, {"role": "user", "content": _USER_2},
                       {"role": "assistant", "content": _ASSISTANT_2}])
        sys_user = render([system, user])
        sys_user_prompt = render([system, user], generation=True)
        head_system = _between(full, None, _SYSTEM)
        system_suffix = _between(alone, _SYSTEM, None)
        user_prefix = _between(full, _SYSTEM, _USER)[len(system_suffix):]
        user_suffix = _between(sys_user, _USER, None)
        generation_prompt = _between(sys_user_prompt, _USER, None)[len(user_suffix):]
        assistant_suffix = _between(full, _ASSISTANT_2, None)
        assistant_prefix = _between(full, _USER, _ASSISTANT)[len(user_suffix):]
    except ValueError:
        raise _unwrappable("a message's content does not appear verbatim in the rendering") from None
    # Without a system message the template may print a constant head (a BOS text) or a default system turn.
    no_system = render([user])
    head_plain = _between(no_system, None, _USER)[: -len(user_prefix) or None]
    default_system: str | None = None
    head = head_plain
    if head_system.startswith(head_plain):
        system_prefix = head_system[len(head_plain):]
    else:
        head, system_prefix = "", head_system
        if not (head_plain.startswith(system_prefix) and head_plain.endswith(system_suffix)):
            raise _unwrappable("the text before the first user turn is neither a constant head nor a system turn")
        default_system = head_plain[len(system_prefix): len(head_plain) - len(system_suffix)]
    wrapping = RoleWrapping(head=head, system=(system_prefix, system_suffix), user=(user_prefix, user_suffix),
                            assistant=(assistant_prefix, assistant_suffix), generation_prompt=generation_prompt,
                            default_system=default_system)
    checks = [
        ([user], True), ([system, user], True), ([user, reply], False),
        ([system, user, reply, {"role": "user", "content": "second\nline"}], True),
        ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
          {"role": "user", "content": "c"}], True),
    ]
    for messages, generation in checks:
        if wrapping.render(messages, add_generation_prompt=generation) != render(messages, generation):
            raise _unwrappable("it is not a fixed prefix and suffix around each message")
    return wrapping


def _go_literal(text: str) -> str:
    """Literal text inside a Go template (in a Modelfile's triple-quoted TEMPLATE)."""
    if "{{" in text or '"""' in text:
        raise _unwrappable(f"its literal text {text!r} holds '{{{{' or '\"\"\"'")
    return text


def go_template(wrapping: RoleWrapping) -> str:
    """The Ollama TEMPLATE: one branch per role over ``.Messages``, then the generation prompt.

    No ``{{-`` trim markers: they would also eat the newlines that end a turn's literal suffix.
    """
    parts = [_go_literal(wrapping.head), "{{ range .Messages }}"]
    for index, (role, (prefix, suffix)) in enumerate((("system", wrapping.system), ("user", wrapping.user),
                                                     ("assistant", wrapping.assistant))):
        parts.append(f'{{{{ {"if" if index == 0 else "else if"} eq .Role "{role}" }}}}')
        parts.append(f"{_go_literal(prefix)}{{{{ .Content }}}}{_go_literal(suffix)}")
    parts.append("{{ end }}{{ end }}")
    parts.append(_go_literal(wrapping.generation_prompt))
    return "".join(parts)


def _quoted(value: str) -> str:
    if '"' in value or "\n" in value:
        raise _unwrappable(f"a stop string {value!r} holds a quote or a newline")
    return f'"{value}"'


def modelfile_text(gguf_name: str, wrapping: RoleWrapping, stop_strings: list[str],
                   parameters: dict[str, float | int]) -> str:
    """``FROM ./<gguf>``, TEMPLATE, SYSTEM (the template's default system message), stops, sampling."""
    lines = [f"FROM ./{gguf_name}", f'TEMPLATE """{go_template(wrapping)}"""']
    if wrapping.default_system is not None:
        lines.append(f'SYSTEM """{_go_literal(wrapping.default_system)}"""')
    lines += [f"PARAMETER stop {_quoted(text)}" for text in stop_strings]
    lines += [f"PARAMETER {key} {value}" for key, value in parameters.items()]
    return "\n".join(lines) + "\n"
