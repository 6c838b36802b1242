"""One self-contained HTML report over one or more run folders (e.g. before vs after training).

From each run folder it reads what exists:

- ``metrics.jsonl``: one JSON object per line. Training lines ``{"kind": "train", "step",
  "epoch", "loss", ...}``, eval lines ``{"kind": "eval", "step", "epoch", "eval_loss"}``;
  preference runs add ``rewards/margin`` (or TRL's ``rewards/margins``) and ``rewards/accuracy``
  (or ``rewards/accuracies``). A line without ``kind`` is a train line if it has ``loss`` and an
  eval line if it has ``eval_loss``.
- probe results: ``summary.json`` and ``<probe>.json`` rows, in ``<run>/probe/`` or the run root.

and writes one HTML file: inline CSS, plots as base64 PNG ``<img>`` tags (matplotlib, Agg
canvas, no pyplot global state), no external resource. Each plot ``<img>`` carries a
``data-plot`` attribute naming it. Missing or unreadable pieces are listed as notes; only a run
folder with nothing readable at all is an error.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from alignkit.errors import AlignkitError
from alignkit.io import atomic_write_text

PROBE_DIR_NAMES = ("probe", "probes")
MARGIN_KEYS = ("rewards/margin", "rewards/margins", "eval_rewards/margin", "eval_rewards/margins")
ACCURACY_KEYS = ("rewards/accuracy", "rewards/accuracies", "eval_rewards/accuracy", "eval_rewards/accuracies")
# Row fields worth showing next to a sample reply, in this order.
SAMPLE_FLAGS = (
    "mode",
    "stopped",
    "finish_reason",
    "length",
    "leak",
    "refused",
    "idk",
    "verdict",
    "correct",
    "span_length",
    "flagged",
    "loop",
    "outcome",
    "policy_score",
    "reference_score",
)
# Summary figures drawn in the bar chart: shares in [0, 1] (lengths and counts stay in the table).
_RATE_KEY = re.compile(r"(rate|share|accuracy|distinct)")
_MAX_SAMPLE_CHARS = 800


@dataclass
class RunData:
    """Everything readable in one run folder, and notes on what was not."""

    label: str
    path: Path
    train: list[dict[str, Any]] = field(default_factory=list)
    eval: list[dict[str, Any]] = field(default_factory=list)
    probe_summary: dict[str, dict[str, Any]] = field(default_factory=dict)
    probe_rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def has_metrics(self) -> bool:
        return bool(self.train or self.eval)


# ---------------------------------------------------------------------------------------------
# Reading run folders


def _number(value: Any) -> float | None:
    """A JSON number as float (NaN kept: it plots as a gap); bools and strings are not numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _first(record: dict[str, Any], keys: Sequence[str]) -> float | None:
    for key in keys:
        value = _number(record.get(key))
        if value is not None:
            return value
    return None


def read_metrics(path: Path, notes: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train and eval lines of a ``metrics.jsonl``; malformed lines are noted and skipped."""
    train: list[dict[str, Any]] = []
    evals: list[dict[str, Any]] = []
    skipped: list[int] = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                skipped.append(line_number)
                continue
            if not isinstance(record, dict) or _number(record.get("step")) is None:
                skipped.append(line_number)
                continue
            kind = record.get("kind")
            if kind == "train" or (kind is None and "loss" in record):
                train.append(record)
            elif kind == "eval" or (kind is None and "eval_loss" in record):
                evals.append(record)
    if skipped:
        shown = ", ".join(str(n) for n in skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        notes.append(f"{path}: skipped {len(skipped)} unreadable line(s) (line {shown})")
    return train, evals


def _load_json(path: Path, notes: list[str]) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        notes.append(f"{path}: unreadable ({exc.__class__.__name__}: {exc}); skipped")
        return None


def find_probe_dir(run_dir: Path) -> Path | None:
    """``<run>/probe/`` (or ``probes/``) when it holds a summary, else the run root if it does."""
    for candidate in (*(run_dir / name for name in PROBE_DIR_NAMES), run_dir):
        if (candidate / "summary.json").is_file():
            return candidate
    return None


def read_probes(
    probe_dir: Path, notes: list[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Probe summary (``{probe: {figures..., passed}}``) and the rows of each probe found."""
    summary = _load_json(probe_dir / "summary.json", notes)
    if not isinstance(summary, dict):
        if summary is not None:
            notes.append(f"{probe_dir / 'summary.json'}: expected an object of probes; skipped")
        return {}, {}
    summary = {name: entry for name, entry in summary.items() if isinstance(entry, dict)}
    rows: dict[str, list[dict[str, Any]]] = {}
    for name in summary:
        rows_path = probe_dir / f"{name}.json"
        if not rows_path.is_file():
            notes.append(f"{rows_path}: no rows file; samples for '{name}' skipped")
            continue
        data = _load_json(rows_path, notes)
        if isinstance(data, dict):
            data = data.get("rows")
        if isinstance(data, list):
            rows[name] = [row for row in data if isinstance(row, dict)]
        elif data is not None:
            notes.append(f"{rows_path}: expected a list of rows; skipped")
    return summary, rows


def load_run(run_dir: Path, label: str) -> RunData:
    """Read a run folder; raise ``AlignkitError`` when it has nothing to report."""
    if not run_dir.is_dir():
        raise AlignkitError("run folder not found", source=str(run_dir))
    run = RunData(label=label, path=run_dir)
    metrics_path = run_dir / "metrics.jsonl"
    if metrics_path.is_file():
        run.train, run.eval = read_metrics(metrics_path, run.notes)
        if not run.has_metrics:
            run.notes.append(f"{metrics_path}: no train or eval lines")
    probe_dir = find_probe_dir(run_dir)
    if probe_dir is not None:
        run.probe_summary, run.probe_rows = read_probes(probe_dir, run.notes)
    else:
        run.notes.append(f"{label}: no probe summary.json; probe results skipped")
    if not metrics_path.is_file() and run.probe_summary:
        # A probe-only folder (e.g. the untouched base model) has no training to plot: not a problem.
        run.notes.append(f"{label}: probe results only (no metrics.jsonl, so no training curves)")
    if not run.has_metrics and not run.probe_summary:
        raise AlignkitError(
            "nothing to report: no readable metrics.jsonl lines and no probe summary.json "
            f"(looked in {', '.join(PROBE_DIR_NAMES)}/ and the folder itself)",
            source=str(run_dir),
        )
    return run


def default_labels(run_dirs: Sequence[Path]) -> list[str]:
    """Folder names, widened with the parent folder (then an index) where two would clash."""
    labels = [path.name or str(path) for path in run_dirs]
    if len(set(labels)) < len(labels):
        labels = [f"{path.parent.name}/{path.name}" for path in run_dirs]
    if len(set(labels)) < len(labels):
        labels = [f"{index + 1}:{label}" for index, label in enumerate(labels)]
    return labels


# ---------------------------------------------------------------------------------------------
# Pure summaries of the curves


def epoch_buckets(epochs: Sequence[float]) -> list[int]:
    """The epoch each logged value belongs to.

    Integer epochs are used as given. Fractional progress (HF style: 0.25, ..., 1.0, 1.25) maps
    (0, 1] to epoch 1, (1, 2] to epoch 2, ..., so a value logged at exactly 1.0 closes epoch 1.
    """
    if all(float(e).is_integer() for e in epochs):
        return [int(e) for e in epochs]
    return [max(math.ceil(e), 1) for e in epochs]


def per_epoch(points: Sequence[tuple[float, float]], *, reduce: str) -> list[tuple[int, float]]:
    """``(epoch, value)`` pairs grouped by ``epoch_buckets``: the ``mean`` or the ``last`` value."""
    finite = [(e, v) for e, v in points if math.isfinite(v)]
    grouped: dict[int, list[float]] = {}
    for bucket, (_, value) in zip(epoch_buckets([e for e, _ in finite]), finite, strict=True):
        grouped.setdefault(bucket, []).append(value)
    if reduce == "mean":
        return [(bucket, sum(vals) / len(vals)) for bucket, vals in sorted(grouped.items())]
    return [(bucket, vals[-1]) for bucket, vals in sorted(grouped.items())]


def overfitting_note(
    train: Sequence[tuple[float, float]], evals: Sequence[tuple[float, float]]
) -> str | None:
    """A sentence when eval loss ended above its minimum (by >2%) while train loss went down."""
    evals = [(s, v) for s, v in evals if math.isfinite(v)]
    train = [(s, v) for s, v in train if math.isfinite(v)]
    if len(evals) < 2:
        return None
    best_step, best = min(evals, key=lambda point: point[1])
    last_step, last = evals[-1]
    if last <= best * 1.02 or last_step == best_step:
        return None
    after_best = [v for s, v in train if s >= best_step]
    train_fell = len(after_best) >= 2 and after_best[-1] < after_best[0]
    rise = 100 * (last - best) / abs(best) if best else float("inf")
    trend = " while train loss kept falling: the model is overfitting" if train_fell else ""
    return (
        f"eval loss rose {rise:.0f}% from its minimum {best:.4g} (step {best_step:g}) to {last:.4g}{trend}."
    )


def _series(
    records: Sequence[dict[str, Any]], key: str | Sequence[str], x: str = "step"
) -> list[tuple[float, float]]:
    keys = (key,) if isinstance(key, str) else key
    points = []
    for record in records:
        x_value, y_value = _number(record.get(x)), _first(record, keys)
        if x_value is not None and y_value is not None:
            points.append((x_value, y_value))
    return points


# ---------------------------------------------------------------------------------------------
# Plots


def _png_data_uri(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _plot(points: Sequence[tuple[float, float]], axes: Any, label: str, **style: Any) -> None:
    if points:
        axes.plot([p[0] for p in points], [p[1] for p in points], label=label, **style)


def plot_losses(run: RunData) -> str:
    """Train and eval loss per step (left) and per epoch (right); best eval step marked."""
    train = _series(run.train, "loss")
    evals = _series(run.eval, "eval_loss")
    figure = Figure(figsize=(11, 3.6))
    by_step, by_epoch = figure.subplots(1, 2)
    _plot(train, by_step, "train loss", linewidth=1, alpha=0.8)
    _plot(evals, by_step, "eval loss", marker="o", linewidth=1.5)
    finite_evals = [p for p in evals if math.isfinite(p[1])]
    if finite_evals:
        best_step = min(finite_evals, key=lambda p: p[1])[0]
        by_step.axvline(best_step, linestyle=":", color="gray", label=f"best eval (step {best_step:g})")
    by_step.set(title=f"{run.label}: loss per step", xlabel="step", ylabel="loss")
    train_epochs = per_epoch(_series(run.train, "loss", x="epoch"), reduce="mean")
    eval_epochs = per_epoch(_series(run.eval, "eval_loss", x="epoch"), reduce="last")
    _plot(train_epochs, by_epoch, "train loss (epoch mean)", marker="s")
    _plot(eval_epochs, by_epoch, "eval loss (end of epoch)", marker="o")
    by_epoch.set(title=f"{run.label}: loss per epoch", xlabel="epoch", ylabel="loss")
    by_epoch.xaxis.set_major_locator(MaxNLocator(integer=True))
    if not (train_epochs or eval_epochs):
        by_epoch.text(
            0.5, 0.5, "no epoch field logged", ha="center", va="center", transform=by_epoch.transAxes
        )
    for axes in (by_step, by_epoch):
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=8)
    return _png_data_uri(figure)


def has_rewards(run: RunData) -> bool:
    return any(_first(r, MARGIN_KEYS + ACCURACY_KEYS) is not None for r in run.train + run.eval)


def plot_rewards(run: RunData) -> str:
    """Reward margin (chosen - rejected) and preference accuracy per step, train and eval."""
    figure = Figure(figsize=(11, 3.4))
    margin_axes, accuracy_axes = figure.subplots(1, 2)
    for records, name, style in ((run.train, "train", {"linewidth": 1}), (run.eval, "eval", {"marker": "o"})):
        _plot(_series(records, MARGIN_KEYS), margin_axes, name, **style)
        _plot(_series(records, ACCURACY_KEYS), accuracy_axes, name, **style)
    margin_axes.axhline(0, color="gray", linewidth=0.8)
    margin_axes.set(title=f"{run.label}: reward margin", xlabel="step", ylabel="margin")
    accuracy_axes.set(
        title=f"{run.label}: reward accuracy", xlabel="step", ylabel="accuracy", ylim=(-0.02, 1.02)
    )
    for axes in (margin_axes, accuracy_axes):
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=8)
    return _png_data_uri(figure)


def rate_figures(runs: Sequence[RunData]) -> list[tuple[str, str]]:
    """``(probe, figure)`` pairs worth a bar: share-like names, numbers in [0, 1] in every run."""
    pairs: list[tuple[str, str]] = []
    for run in runs:
        for probe, entry in run.probe_summary.items():
            for key, value in entry.items():
                number = _number(value)
                if (
                    _RATE_KEY.search(key)
                    and number is not None
                    and 0 <= number <= 1
                    and (probe, key) not in pairs
                ):
                    pairs.append((probe, key))
    return pairs


def plot_probe_bars(runs: Sequence[RunData], pairs: Sequence[tuple[str, str]]) -> str:
    """Grouped horizontal bars: one group per probe figure, one bar per run (missing left out).

    Horizontal so that a dozen ``probe: figure`` labels stay readable without rotation.
    """
    n_runs = max(len(runs), 1)
    height = 0.8 / n_runs
    figure = Figure(figsize=(10, 1.2 + 0.28 * len(pairs) * n_runs))
    axes = figure.subplots()
    for index, run in enumerate(runs):
        ys, widths = [], []
        for position, (probe, key) in enumerate(pairs):
            value = _number(run.probe_summary.get(probe, {}).get(key))
            if value is not None:
                ys.append(position + (index - (n_runs - 1) / 2) * height)
                widths.append(value)
        bars = axes.barh(ys, widths, height=height, label=run.label)
        axes.bar_label(bars, fmt="%.2f", fontsize=7, padding=2)
    axes.set_yticks(range(len(pairs)))
    axes.set_yticklabels([f"{probe}: {key}" for probe, key in pairs], fontsize=8)
    axes.invert_yaxis()  # first figure on top, as in the table
    axes.set(xlim=(0, 1.12), xlabel="rate", title="Probe figures by run")
    axes.grid(axis="x", alpha=0.3)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return _png_data_uri(figure)


# ---------------------------------------------------------------------------------------------
# HTML

_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, sans-serif; margin: 2rem auto; max-width: 1250px;
       color: #1d1d1f; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .3rem; margin-top: 2.2rem; }
img.plot { max-width: 100%; display: block; margin: .6rem 0 1.2rem; }
table { border-collapse: collapse; margin: .6rem 0 1.2rem; font-size: .9rem; }
th, td { border: 1px solid #ddd; padding: .3rem .55rem; text-align: left; vertical-align: top; }
th { background: #f5f5f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { background: #e3f6e5; color: #11661f; font-weight: 600; }
.fail { background: #fde8e8; color: #a11919; font-weight: 600; }
.note { color: #7a5b00; background: #fff8e1; padding: .4rem .7rem; margin: .3rem 0; border-radius: 4px; }
.reply { white-space: pre-wrap; font-family: ui-monospace, Menlo, monospace; font-size: .82rem; max-width: 520px; }
.flags { color: #666; font-size: .78rem; margin-top: .3rem; }
.muted { color: #888; }
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _format_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower() if isinstance(value, bool) else "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _img(uri: str, name: str, alt: str) -> str:
    return f'<img class="plot" data-plot="{_esc(name)}" alt="{_esc(alt)}" src="{uri}">'


def _training_section(runs: Sequence[RunData]) -> str:
    parts = ["<h2>Training</h2>"]
    with_metrics = [run for run in runs if run.has_metrics]
    if not with_metrics:
        parts.append('<p class="note">No run has training metrics.</p>')
        return "\n".join(parts)
    for run in with_metrics:
        parts.append(f"<h3>{_esc(run.label)}</h3>")
        parts.append(_img(plot_losses(run), f"loss:{run.label}", f"loss curves of {run.label}"))
        note = overfitting_note(_series(run.train, "loss"), _series(run.eval, "eval_loss"))
        if note:
            parts.append(f'<p class="note">{_esc(note)}</p>')
        if has_rewards(run):
            parts.append(
                _img(plot_rewards(run), f"rewards:{run.label}", f"reward margin and accuracy of {run.label}")
            )
    return "\n".join(parts)


def _probe_table(runs: Sequence[RunData], probes: Sequence[str]) -> str:
    head = "".join(f"<th>{_esc(run.label)}</th>" for run in runs)
    body = []
    for probe in probes:
        keys: list[str] = []
        for run in runs:
            for key in run.probe_summary.get(probe, {}):
                if key not in keys and key not in ("passed", "failures"):
                    keys.append(key)
        verdicts = []
        for run in runs:
            entry = run.probe_summary.get(probe)
            if entry is None or "passed" not in entry:
                verdicts.append('<td class="muted">not run</td>')
            else:
                failures = "; ".join(str(f) for f in entry.get("failures") or [])
                css, word = ("pass", "PASS") if entry["passed"] else ("fail", "FAIL")
                detail = f"<br><small>{_esc(failures)}</small>" if failures else ""
                verdicts.append(f'<td class="{css}">{word}{detail}</td>')
        span = len(keys) + 1
        body.append(f'<tr><th rowspan="{span}">{_esc(probe)}</th><td>passed</td>{"".join(verdicts)}</tr>')
        for key in keys:
            cells = "".join(
                f'<td class="num">{_esc(_format_value(run.probe_summary.get(probe, {}).get(key)))}</td>'
                for run in runs
            )
            body.append(f"<tr><td>{_esc(key)}</td>{cells}</tr>")
    return f"<table><tr><th>probe</th><th>figure</th>{head}</tr>{''.join(body)}</table>"


def _row_prompt(row: dict[str, Any]) -> str:
    for key in ("prompt", "question", "id"):
        if key in row:
            return str(row[key])
    return ""


def _pick_rows(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """First row per prompt, preferring greedy rows: the reply a user gets by default."""
    picked: dict[str, dict[str, Any]] = {}
    for row in rows:
        prompt = _row_prompt(row)
        current = picked.get(prompt)
        if current is None or (current.get("mode") not in (None, "greedy") and row.get("mode") == "greedy"):
            picked[prompt] = row
    return picked


def _reply_cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return '<td class="muted">—</td>'
    text = str(row.get("text", row.get("policy_text", "")))
    if len(text) > _MAX_SAMPLE_CHARS:
        text = text[:_MAX_SAMPLE_CHARS] + f" … [{len(text) - _MAX_SAMPLE_CHARS} more characters]"
    flags = ", ".join(f"{key}: {_format_value(row[key])}" for key in SAMPLE_FLAGS if key in row)
    return f'<td><div class="reply">{_esc(text)}</div><div class="flags">{_esc(flags)}</div></td>'


def _samples_section(runs: Sequence[RunData], probes: Sequence[str], max_samples: int) -> str:
    parts = ["<h2>Sample generations</h2>"]
    for probe in probes:
        picked = [_pick_rows(run.probe_rows.get(probe, [])) for run in runs]
        prompts: list[str] = []
        for rows in picked:
            for prompt in rows:
                if prompt not in prompts and len(prompts) < max_samples:
                    prompts.append(prompt)
        if not prompts:
            continue
        head = "".join(f"<th>{_esc(run.label)}</th>" for run in runs)
        body = "".join(
            f"<tr><td>{_esc(prompt) if prompt.strip() else '<i>(empty)</i>'}</td>"
            + "".join(_reply_cell(rows.get(prompt)) for rows in picked)
            + "</tr>"
            for prompt in prompts
        )
        parts.append(
            f"<details open><summary><b>{_esc(probe)}</b></summary>"
            f"<table><tr><th>prompt</th>{head}</tr>{body}</table></details>"
        )
    return "\n".join(parts)


def _probe_section(runs: Sequence[RunData], max_samples: int) -> str:
    probes: list[str] = []
    for run in runs:
        probes.extend(name for name in run.probe_summary if name not in probes)
    if not probes:
        return '<h2>Probes</h2><p class="note">No run has probe results.</p>'
    parts = ["<h2>Probes</h2>", _probe_table(runs, probes)]
    pairs = rate_figures(runs)
    if pairs:
        parts.append(_img(plot_probe_bars(runs, pairs), "probes", "probe figures by run"))
    parts.append(_samples_section(runs, probes, max_samples))
    return "\n".join(parts)


# The figures a grounded-assistant run is judged by, in the order the scorecard shows them.
SCORECARD_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("hello stop", "hello", "sampled_stop_rate"),
    ("IDK unanswerable", "grounded", "idk_rate_unanswerable"),
    ("strict accuracy", "grounded", "accuracy_answerable"),
    ("mixed-line", "grounded", "mixed_line_rate_answerable"),
    ("false IDK", "grounded", "false_idk_rate_answerable"),
)


def scorecard_rows(runs: Sequence[RunData]) -> list[tuple[str, list[str]]]:
    """(label, cells) for every run with at least one scorecard figure; "—" where a figure is absent."""
    rows = []
    for run in runs:
        values = [run.probe_summary.get(probe, {}).get(key) for _, probe, key in SCORECARD_COLUMNS]
        if any(isinstance(value, (int, float)) for value in values):
            rows.append(
                (
                    run.label,
                    ["—" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v) for v in values],
                )
            )
    return rows


def scorecard_text(runs: Sequence[RunData]) -> str:
    """The scorecard as a fixed-width table for the terminal ('' when no run has a figure)."""
    rows = scorecard_rows(runs)
    if not rows:
        return ""
    header = ["run", *(title for title, _, _ in SCORECARD_COLUMNS)]
    table = [header, *([label, *cells] for label, cells in rows)]
    widths = [max(len(line[col]) for line in table) for col in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join(
            [first, *(cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))]
        )

    return "\n".join(
        [line(header), "  ".join("-" * width for width in widths), *(line(r) for r in table[1:])]
    )


def _scorecard_section(runs: Sequence[RunData]) -> str:
    rows = scorecard_rows(runs)
    if not rows:
        return ""
    head = "".join(f"<th>{_esc(title)}</th>" for title, _, _ in SCORECARD_COLUMNS)
    body = "".join(
        f"<tr><td>{_esc(label)}</td>{''.join(f'<td>{_esc(cell)}</td>' for cell in cells)}</tr>"
        for label, cells in rows
    )
    return (
        '<h2>Scorecard</h2><table class="scorecard"><tr><th>run</th>' + head + "</tr>" + body + "</table>"
        "<p>hello stop: sampled replies to greetings that end their turn. Grounded figures (strict): "
        "accuracy counts an answer only when it was read from the line that holds it; mixed-line: the "
        "right value inside another line's answer; false IDK: \"I don't know\" to an answerable question.</p>"
    )


def render_report(runs: Sequence[RunData], *, max_samples: int = 4) -> str:
    """The full HTML page for already-loaded runs."""
    run_list = "".join(f"<li><b>{_esc(run.label)}</b>: <code>{_esc(run.path)}</code></li>" for run in runs)
    notes = [note for run in runs for note in run.notes]
    notes_html = "".join(f'<p class="note">{_esc(note)}</p>' for note in notes)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>alignkit report</title><style>{_CSS}</style></head><body>\n"
        f"<h1>alignkit report</h1>{_scorecard_section(runs)}<ul>{run_list}</ul>\n"
        f"{notes_html}\n{_training_section(runs)}\n{_probe_section(runs, max_samples)}\n"
        "</body></html>\n"
    )


def build_report(
    run_dirs: Sequence[str | Path],
    out: str | Path,
    *,
    labels: Sequence[str] | None = None,
    max_samples: int = 4,
) -> Path:
    """Read each run folder and write one self-contained HTML report to ``out``; return its path.

    ``labels`` name the runs in plots and tables (default: folder names). The file is written
    to a temp name and renamed, so a failed build never leaves a half report behind.
    """
    paths = [Path(p) for p in run_dirs]
    if not paths:
        raise AlignkitError("give at least one run folder", field="run_dirs")
    if labels is not None and len(labels) != len(paths):
        raise AlignkitError(f"{len(labels)} labels for {len(paths)} run folders", field="labels")
    names = list(labels) if labels is not None else default_labels(paths)
    runs = [load_run(path, label) for path, label in zip(paths, names, strict=True)]
    page = render_report(runs, max_samples=max_samples)
    out = Path(out)
    atomic_write_text(out, page)
    return out
