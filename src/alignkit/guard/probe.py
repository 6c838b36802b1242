"""The guard probe: how often the input rules block red-team prompts and over-block benign look-alikes.

Figures per rule and overall: ``block_rate`` on the red-team set (higher is better),
``over_block_rate`` on the benign set (lower is better; "kill a process", medical and security
questions), and the p95 latency of each rule and of a whole prompt check, in milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from alignkit.data.readers import read_records
from alignkit.errors import DataError
from alignkit.guard.checks import Guard, Verdict


def read_prompts(path: str | Path) -> list[str]:
    """Prompts of a ``.txt`` (one a line) or records with ``text`` or ``prompt``."""

    path = Path(path)
    if path.suffix == ".txt":
        if not path.is_file():
            raise DataError("file not found", source=str(path))
        prompts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        prompts = []
        for raw in read_records(path):
            value = raw.data.get("text", raw.data.get("prompt"))
            if not isinstance(value, str) or not value.strip():
                raise DataError(
                    "expected a text (or prompt) string", source=raw.source, line=raw.line, field="text"
                )
            prompts.append(value)
    if not prompts:
        raise DataError("no prompts", source=str(path))
    return prompts


def _p95(values: Sequence[float]) -> float:
    return round(float(np.percentile(values, 95)), 3) if values else 0.0


def _rates(verdicts: Sequence[Verdict], rule_names: Sequence[str]) -> dict[str, Any]:
    n = len(verdicts)
    per_rule = {
        name: round(sum(any(r.name == name and r.fired for r in v.results) for v in verdicts) / n, 4)
        for name in rule_names
    }
    return {"n": n, "overall": round(sum(v.blocked for v in verdicts) / n, 4), "per_rule_fired": per_rule}


def run_guard_probe(guard: Guard, blocked: Sequence[str], benign: Sequence[str]) -> dict[str, Any]:
    import time

    names = [rule.name for rule in guard.config.input]
    call_ms: list[float] = []
    red: list[Verdict] = []
    ok: list[Verdict] = []
    for texts, sink in ((blocked, red), (benign, ok)):
        for text in texts:
            started = time.perf_counter()
            sink.append(guard.check_prompt(text))
            call_ms.append((time.perf_counter() - started) * 1000.0)
    latency = {
        name: _p95([r.latency_ms for v in red + ok for r in v.results if r.name == name]) for name in names
    }
    return {
        "block_rate": _rates(red, names),
        "over_block_rate": _rates(ok, names),
        "p95_ms": {"per_rule": latency, "prompt_check": _p95(call_ms)},
        "missed": [text for text, v in zip(blocked, red, strict=True) if not v.blocked][:20],
        "over_blocked": [text for text, v in zip(benign, ok, strict=True) if v.blocked][:20],
    }
