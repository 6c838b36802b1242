"""What a probe found (``ProbeResult``), its verdict against thresholds, and the files it is written to.

``write_probe_results`` writes ``<probe>.json`` (the rows) and ``summary.json``
(``{probe: {figures..., "passed": bool, "failures": [...]}}``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from alignkit.errors import AlignkitError
from alignkit.io import atomic_write_text


@dataclass
class ProbeResult:
    """What one probe found: per-reply ``rows``, figures in ``summary``, and the verdict.

    ``failures`` says which threshold failed and by how much, e.g.
    ``"sampled_stop_rate 0.62 < 0.95"``.
    """

    name: str
    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    passed: bool
    failures: list[str] = field(default_factory=list)


def rate(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def check_bound(figures: dict[str, Any], key: str, bound: float | None, kind: Literal["min", "max"]) -> str | None:
    """A failure message when ``figures[key]`` is on the wrong side of ``bound``, else None."""
    if bound is None:
        return None
    value = figures.get(key)
    if value is None:
        return f"{key} was not measured (threshold {bound:g})"
    if kind == "min" and value < bound:
        return f"{key} {value:.3g} < {bound:g}"
    if kind == "max" and value > bound:
        return f"{key} {value:.3g} > {bound:g}"
    return None


def verdict(
    name: str,
    rows: list[dict[str, Any]],
    summary: dict[str, Any],
    checks: Sequence[tuple[str, float | None, Literal["min", "max"]]],
    extra_failures: Sequence[str] = (),
) -> ProbeResult:
    failures = [*extra_failures]
    for key, bound, kind in checks:
        message = check_bound(summary, key, bound, kind)
        if message is not None:
            failures.append(message)
    return ProbeResult(name=name, rows=rows, summary=summary, passed=not failures, failures=failures)


def rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _to_json(payload: Any) -> str:
    """``allow_nan=False`` because NaN is not JSON: a non-finite figure here is a bug upstream."""
    return json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_probe_results(results: Sequence[ProbeResult], out_dir: str | Path, *, merge: bool = False) -> Path:
    """Write ``<probe>.json`` (the rows) per result and ``summary.json``; return its path.

    ``summary.json`` is ``{probe: {figures..., "passed": bool, "failures": [...]}}``. With
    ``merge``, entries of probes not in ``results`` are kept from an existing summary (to rerun
    one probe); by default the summary holds exactly these results. Everything is serialised
    before the first write, so a result that cannot be written leaves the folder untouched;
    ``summary.json`` is written last, so it never lists rows that are not on disk.
    """
    out_dir = Path(out_dir)
    summary_path = out_dir / "summary.json"
    summary: dict[str, Any] = {}
    if merge and summary_path.exists():
        try:
            existing = json.loads(summary_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise AlignkitError(
                f"cannot merge into invalid JSON: {exc.msg}", source=str(summary_path)
            ) from exc
        if isinstance(existing, dict):
            summary.update(existing)
    files: list[tuple[Path, str]] = []
    for result in results:
        if result.name == "summary" or not result.name or "/" in result.name or "\\" in result.name:
            raise ValueError(f"invalid probe name {result.name!r}")
        files.append((out_dir / f"{result.name}.json", _to_json(result.rows)))
        summary[result.name] = {**result.summary, "passed": result.passed, "failures": list(result.failures)}
    files.append((summary_path, _to_json(summary)))
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, text in files:
        atomic_write_text(path, text)
    return summary_path


def all_passed(results: Sequence[ProbeResult]) -> bool:
    """True when every probe passed its thresholds (the CLI exits 1 otherwise)."""
    return all(result.passed for result in results)
