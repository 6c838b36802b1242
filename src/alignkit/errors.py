"""Errors a user can cause and fix: each names where the problem is and what was expected.

The CLI turns an ``AlignkitError`` into one line on stderr,
``error: <file>:<line>: <field>: <what was expected>``, and exit code 2 (no traceback unless
``--debug``). Code that finds a user mistake raises one of these; anything else is a bug.
"""

from __future__ import annotations


class AlignkitError(Exception):
    """A problem with the user's input, config, files or environment (exit code 2)."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.line = line
        self.field = field

    def one_line(self) -> str:
        """The single line the CLI prints: ``<file>:<line>: <field>: <message>``."""
        parts: list[str] = []
        if self.source is not None:
            parts.append(f"{self.source}:{self.line}" if self.line is not None else self.source)
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return ": ".join(parts).replace("\n", " ")

    def __str__(self) -> str:
        return self.one_line()


class DataError(AlignkitError):
    """A record or data file is malformed."""


class ConfigError(AlignkitError):
    """A config file or override is invalid."""


class ModelError(AlignkitError):
    """A model spec cannot be loaded as asked."""


class CheckpointError(AlignkitError):
    """A checkpoint is partial, corrupt or does not match the run."""
