"""The HTML report from synthetic run folders: one PNG per expected plot, notes not crashes."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from alignkit.errors import AlignkitError
from alignkit.evaluation.report import build_report, epoch_buckets, overfitting_note, per_epoch

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMG_TAG = re.compile(r"<img\b[^>]*>")
HOSTILE_REPLY = "<script>alert('x')</script> & done"


def write_jsonl(path: Path, records: list[Any]) -> None:
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")


def write_probe_dir(folder: Path, *, stop_rate: float, refusal_rate: float, hello_text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    summary = {
        "hello": {
            "greedy_stop_rate": 1.0,
            "sampled_stop_rate": stop_rate,
            "length_p95": 96.0,
            "leakage_rate": 0.0,
            "leak_markers": {},
            "passed": stop_rate >= 0.95,
            "failures": [] if stop_rate >= 0.95 else [f"sampled_stop_rate {stop_rate} < 0.95"],
        },
        "refusal": {"refusal_rate": refusal_rate, "over_refusal_rate": 0.1, "passed": True, "failures": []},
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    hello_rows = [
        {"prompt": "hello", "mode": "sampled", "sample": 0, "text": "sampled reply", "stopped": False},
        {"prompt": "hello", "mode": "greedy", "sample": 0, "text": hello_text, "stopped": True, "leak": None},
        {"prompt": "", "mode": "greedy", "sample": 0, "text": "Hi! Anything I can do?", "stopped": True},
    ]
    (folder / "hello.json").write_text(json.dumps(hello_rows))
    # refusal.json deliberately missing: the report notes it and goes on.


def make_runs(tmp_path: Path) -> tuple[Path, Path]:
    """``before``: probe results only (root layout). ``after``: a DPO run with metrics + probe/."""
    before = tmp_path / "before"
    write_probe_dir(before, stop_rate=0.6, refusal_rate=0.2, hello_text="Hello hello hello hello")
    after = tmp_path / "after"
    after.mkdir()
    records: list[Any] = []
    for step in range(1, 41):
        epoch = step / 10  # four epochs of ten steps, HF-style fractional progress
        records.append(
            {
                "kind": "train",
                "step": step,
                "epoch": epoch,
                "loss": 2.0 / step**0.5,
                "lr": 1e-5,
                "rewards/margin": step / 20,
                "rewards/accuracy": min(1.0, 0.5 + step / 50),
            }
        )
        if step % 10 == 0:
            # Eval falls for two epochs, then rises: overfitting.
            eval_loss = {10: 1.0, 20: 0.8, 30: 0.9, 40: 1.1}[step]
            records.append({"kind": "eval", "step": step, "epoch": epoch, "eval_loss": eval_loss})
    write_jsonl(after / "metrics.jsonl", records)
    with (after / "metrics.jsonl").open("a") as handle:
        handle.write("{not json\n")
    write_probe_dir(after / "probe", stop_rate=1.0, refusal_rate=0.9, hello_text=HOSTILE_REPLY)
    return before, after


def img_tags(page: str) -> dict[str, str]:
    """``data-plot`` name -> ``src`` of every ``<img>`` in the page."""
    tags = {}
    for tag in IMG_TAG.findall(page):
        name = re.search(r'data-plot="([^"]*)"', tag)
        src = re.search(r'src="([^"]*)"', tag)
        assert name and src, tag
        tags[html.unescape(name.group(1))] = src.group(1)
    return tags


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE)
    width, height = struct.unpack(">II", data[16:24])  # IHDR follows the signature
    return width, height


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One report over ``before`` and ``after``, built once for the tests that only read it."""
    tmp_path = tmp_path_factory.mktemp("report")
    before, after = make_runs(tmp_path)
    return build_report([before, after], tmp_path / "out" / "report.html", labels=["base", "dpo"])


EXPECTED_PLOTS = ["loss:dpo", "probes", "rewards:dpo"]


def test_report_has_one_png_per_expected_plot(report_page: Path) -> None:
    page = report_page.read_text()
    tags = img_tags(page)
    assert sorted(tags) == EXPECTED_PLOTS
    for src in tags.values():
        assert src.startswith("data:image/png;base64,")
        width, height = png_size(base64.b64decode(src.split(",", 1)[1], validate=True))
        assert width > 100 and height > 100
    # Self-contained: nothing to fetch, no script.
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<script" not in page.lower() and "<link" not in page.lower()


def test_report_content_notes_and_escaping(report_page: Path) -> None:
    page = report_page.read_text()
    # Probe table: both runs side by side, verdicts and the failing threshold shown.
    assert "FAIL" in page and "PASS" in page and "sampled_stop_rate 0.6 &lt; 0.95" in page
    # Samples: the greedy row is preferred, the model's text is escaped, the empty prompt is labelled.
    assert html.escape(HOSTILE_REPLY) in page and HOSTILE_REPLY not in page
    assert "sampled reply" not in page
    assert "(empty)" in page
    # Notes instead of crashes.
    assert "base: probe results only (no metrics.jsonl, so no training curves)" in page
    assert "skipped 1 unreadable line(s) (line 45)" in page
    assert "refusal.json: no rows file" in page
    assert "overfitting" in page


def test_unreadable_runs_are_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AlignkitError, match="nothing to report") as info:
        build_report([empty], tmp_path / "r.html")
    assert info.value.source == str(empty)
    with pytest.raises(AlignkitError, match="not found"):
        build_report([tmp_path / "missing"], tmp_path / "r.html")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "summary.json").write_text("{oops")
    (broken / "metrics.jsonl").write_text("not json\n")
    with pytest.raises(AlignkitError, match="nothing to report"):
        build_report([broken], tmp_path / "r.html")
    before, _ = make_runs(tmp_path)
    with pytest.raises(AlignkitError, match="labels"):
        build_report([before], tmp_path / "r.html", labels=["a", "b"])
    assert not (tmp_path / "r.html").exists()


def test_same_folder_names_get_distinct_labels(tmp_path: Path) -> None:
    runs = []
    for parent in ("sft", "dpo"):
        run = tmp_path / parent / "run"
        write_probe_dir(run, stop_rate=1.0, refusal_rate=0.5, hello_text="Hi!")
        runs.append(run)
    page = build_report(runs, tmp_path / "r.html").read_text()
    assert "sft/run" in page and "dpo/run" in page


def test_epoch_grouping_and_overfitting_note() -> None:
    assert epoch_buckets([0.1, 0.5, 1.0, 1.1, 2.0]) == [1, 1, 1, 2, 2]
    assert epoch_buckets([0, 0, 1, 1]) == [0, 0, 1, 1]
    points = [(0.5, 4.0), (1.0, 2.0), (1.5, 1.0), (2.0, 3.0)]
    assert per_epoch(points, reduce="mean") == [(1, 3.0), (2, 2.0)]
    assert per_epoch(points, reduce="last") == [(1, 2.0), (2, 3.0)]
    train = [(1, 3.0), (2, 2.0), (3, 1.5), (4, 1.0)]
    assert overfitting_note(train, [(1, 2.0), (2, 1.0), (4, 1.5)]) is not None
    assert "overfitting" in (overfitting_note(train, [(1, 2.0), (2, 1.0), (4, 1.5)]) or "")
    assert overfitting_note(train, [(1, 2.0), (2, 1.0), (4, 1.01)]) is None
    assert overfitting_note(train, [(1, 2.0)]) is None


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


# Appended to a copy of the report (the report itself has no script): once the page has loaded,
# record every image's decoded size into the DOM so --dump-dom carries it out.
IMAGE_CHECK_SCRIPT = """
<script>
window.addEventListener("load", () => {
  const found = Array.from(document.images).map((img) => ({
    plot: img.dataset.plot, complete: img.complete, width: img.naturalWidth, height: img.naturalHeight,
  }));
  const out = document.createElement("pre");
  out.id = "image-check";
  out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
});
</script>
"""


@pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed")
def test_every_plot_renders_in_headless_chromium(report_page: Path, tmp_path: Path) -> None:
    probe_page = tmp_path / "report_checked.html"
    probe_page.write_text(report_page.read_text().replace("</body>", IMAGE_CHECK_SCRIPT + "</body>"))
    chromium = find_chromium()
    assert chromium is not None
    completed = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--window-size=1200,3000",
            "--virtual-time-budget=5000",
            "--dump-dom",
            probe_page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    match = re.search(r'<pre id="image-check">(.*?)</pre>', completed.stdout, re.S)
    assert match, f"no image check in the DOM (rc {completed.returncode}): {completed.stderr[-2000:]}"
    images = json.loads(html.unescape(match.group(1)))
    assert sorted(image["plot"] for image in images) == EXPECTED_PLOTS
    for image in images:
        assert image["complete"] and image["width"] > 100 and image["height"] > 100, image


def _scorecard_run(folder: Path, hello: dict[str, Any] | None, grounded: dict[str, Any] | None) -> Path:
    folder.mkdir(parents=True)
    summary = {}
    if hello is not None:
        summary["hello"] = {**hello, "passed": True, "failures": []}
    if grounded is not None:
        summary["grounded"] = {**grounded, "passed": True, "failures": []}
    if not summary:
        summary["refusal"] = {"refusal_rate": 1.0, "passed": True, "failures": []}
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_scorecard_lists_the_grounded_figures_per_run_and_skips_runs_without_any(tmp_path: Path) -> None:
    from alignkit.evaluation.report import load_run, scorecard_text

    grounded = {
        "idk_rate_unanswerable": 0.875,
        "accuracy_answerable": 0.5,
        "mixed_line_rate_answerable": 0.125,
        "false_idk_rate_answerable": 0.0625,
    }
    runs = [
        load_run(_scorecard_run(tmp_path / "b", {"sampled_stop_rate": 0.5}, None), "baseline"),
        load_run(_scorecard_run(tmp_path / "s", {"sampled_stop_rate": 1.0}, grounded), "sft"),
        # A refusal-only probe folder: no scorecard figure, so no row.
        load_run(_scorecard_run(tmp_path / "x", None, None), "nothing"),
    ]
    assert scorecard_text(runs).splitlines() == [
        "run       hello stop  IDK unanswerable  strict accuracy  mixed-line  false IDK",
        "--------  ----------  ----------------  ---------------  ----------  ---------",
        "baseline        0.50                 —                —           —          —",
        "sft             1.00              0.88             0.50        0.12       0.06",
    ]
    page = build_report([tmp_path / "b", tmp_path / "s"], tmp_path / "r.html", labels=["baseline", "sft"])
    text = page.read_text()
    # The report opens with the same scorecard, before the run list.
    assert text.index("<h2>Scorecard</h2>") < text.index("<ul>")
    assert "<td>sft</td><td>1.00</td><td>0.88</td><td>0.50</td><td>0.12</td><td>0.06</td>" in text
    assert scorecard_text(runs[2:]) == ""
