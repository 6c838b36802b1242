"""A reply's text as its tokens arrive: what a stream (the server's SSE, the terminal chat) may show now."""

from __future__ import annotations

from collections.abc import Callable


class TextStream:
    """One reply's text as its tokens arrive: what can be sent now without taking anything back.

    The tail is held back while it could still be the start of a stop string or an unfinished
    UTF-8 character; text from a stop string on is never sent. The final text (``Generation.text``)
    is what the non-streamed reply would hold, so the deltas join to exactly that.
    """

    def __init__(self, decode: Callable[[list[int]], str], stops: tuple[str, ...], stop_ids: set[int]) -> None:
        self.decode = decode
        self.stops = stops
        self.stop_ids = stop_ids
        self.ids: list[int] = []
        self.sent = ""
        self.closed = False

    def add(self, token: int) -> str:
        if self.closed:
            return ""
        if token in self.stop_ids:
            self.closed = True
            return ""
        self.ids.append(token)
        text = self.decode(self.ids)
        cut = min((text.find(stop) for stop in self.stops if stop in text), default=-1)
        if cut >= 0:
            self.closed = True
            return self._send(text[:cut])
        hold = 1 if text.endswith("\ufffd") else 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(text)), hold, -1):
                if text.endswith(stop[:size]):
                    hold = size
                    break
        return self._send(text[: len(text) - hold])

    def finish(self, final_text: str) -> str:
        return final_text[len(self.sent):] if final_text.startswith(self.sent) else ""

    def _send(self, safe: str) -> str:
        if not safe.startswith(self.sent):
            return ""
        delta, self.sent = safe[len(self.sent):], safe
        return delta


