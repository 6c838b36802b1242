"""What every command returns: its main artifact, its exit code, the figures a pipeline records.

It sits with ``errors`` and ``io`` at the bottom of the import order, so a command's body can return
one from any layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CommandResult:
    """The outcome of one command run.

    ``output`` is the folder or file a later pipeline stage refers to as ``${stage.output}``;
    ``code`` is the exit code (0 done, 1 ran and found problems: lint, probes); ``outputs`` are other
    values a pipeline stage records beside ``output``; ``show`` prints what the command line shows
    when the command is done (a summary line or table), which a pipeline stage does not print;
    ``problems`` say, one line each, why ``code`` is not 0 (a pipeline prints them).
    """

    output: str | None = None
    code: int = 0
    outputs: dict[str, Any] = field(default_factory=dict)
    show: Callable[[], None] | None = None
    problems: list[str] = field(default_factory=list)


def say(*lines: str) -> Callable[[], None]:
    """A ``show`` that prints these lines on stdout."""
    return lambda: print("\n".join(lines))
