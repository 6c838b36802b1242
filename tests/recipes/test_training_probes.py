"""Probes during training (train.probe_every): figures logged per round, the best round kept, early
stop by patience on a crafted sequence, and a training run left exactly as it would be without them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from alignkit.config.base import load_config
from alignkit.errors import AlignkitError
from alignkit.recipes import sft as sft_recipe
from alignkit.recipes.sft import SFTConfig, run_sft
from tests.helpers.sft import losses, sft_config


def write_grounded(path: Path) -> Path:
    items = [
        {
            "id": "a",
            "context": "- The Orla kettle holds 1.7 litres.",
            "question": "How much does it hold?",
            "answerable": True,
            "answers": ["1.7 litres"],
        },
        {
            "id": "u",
            "context": "- The Orla kettle holds 1.7 litres.",
            "question": "What does it cost?",
            "answerable": False,
        },
    ]
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


def probe_lines(cfg: SFTConfig) -> list[dict]:
    lines = (Path(cfg.out) / "metrics.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, lines) if record["kind"] == "probe"]


def test_probes_run_every_n_steps_on_the_model_and_leave_training_unchanged(tmp_path: Path) -> None:
    grounded = write_grounded(tmp_path / "dev.jsonl")
    probed = sft_config(
        tmp_path / "probed",
        "train.max_steps=4",
        "train.probe_every=2",
        f"probe.grounded_data={grounded}",
        "probe.hello_samples=1",
        "probe.max_new_tokens=4",
    )
    plain = sft_config(tmp_path / "plain", "train.max_steps=4")
    run_sft(probed)
    run_sft(plain)
    rounds = probe_lines(probed)
    assert [r["step"] for r in rounds] == [2, 4]
    for record in rounds:
        assert {
            "hello.sampled_stop_rate",
            "hello.loop_rate",
            "grounded.accuracy_answerable",
            "grounded.mixed_line_rate_answerable",
            "grounded.idk_rate_unanswerable",
        } <= set(record)
        assert all(0.0 <= record[k] <= 1.0 for k in record if k.startswith(("hello.", "grounded.")))
        assert record["probe_time_s"] > 0
    # Sampling during the probes draws from a forked RNG: the losses are the ones of a run without them.
    assert losses(probed) == losses(plain)


@pytest.fixture
def scripted_probe(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Replaces the recipe's probes with a crafted accuracy sequence: 0.2, 0.5, 0.4, 0.3, 0.6, ..."""
    sequence = [0.2, 0.5, 0.4, 0.3, 0.6, 0.7, 0.8, 0.9]
    calls: list[float] = []

    def fake(section, model, tokenizer):
        def run() -> dict[str, float]:
            value = sequence[len(calls)]
            calls.append(value)
            return {"grounded.accuracy_answerable": value}

        return run

    monkeypatch.setattr(sft_recipe, "training_probe", fake)
    yield calls


def test_probe_patience_stops_the_run_and_keeps_the_best_round(tmp_path: Path, scripted_probe) -> None:
    cfg = sft_config(
        tmp_path,
        "train.max_steps=8",
        "train.probe_every=1",
        "train.probe_select=grounded.accuracy_answerable",
        "train.probe_patience=2",
        "probe.probes=[hello]",
    )
    result = run_sft(cfg)
    # Best 0.5 at step 2; steps 3 and 4 are no better (0.4, 0.3): patience 2 stops at step 4.
    assert scripted_probe == [0.2, 0.5, 0.4, 0.3]
    assert result.stopped_early and result.state.step == 4
    assert result.state.best_probe == 0.5
    best = Path(cfg.out) / "checkpoints" / "probe-best"
    assert json.loads((best / "state.json").read_text())["loop"]["step"] == 2


def test_probe_select_min_and_no_patience_run_to_the_end(tmp_path: Path, scripted_probe) -> None:
    cfg = sft_config(
        tmp_path,
        "train.max_steps=5",
        "train.probe_every=1",
        "train.probe_select=grounded.accuracy_answerable",
        "train.probe_select_mode=min",
        "probe.probes=[hello]",
    )
    result = run_sft(cfg)
    assert not result.stopped_early and result.state.step == 5
    assert result.state.best_probe == 0.2 and result.state.probes_without_improvement == 4


def test_an_unknown_probe_select_figure_is_named(tmp_path: Path, scripted_probe) -> None:
    cfg = sft_config(
        tmp_path,
        "train.max_steps=2",
        "train.probe_every=1",
        "train.probe_select=hello.nope",
        "probe.probes=[hello]",
    )
    with pytest.raises(AlignkitError, match="hello.nope") as caught:
        run_sft(cfg)
    assert caught.value.field == "train.probe_select"


def test_grounded_probes_during_training_need_a_dev_set(tmp_path: Path) -> None:
    with pytest.raises(AlignkitError, match="probe.grounded_data"):
        load_config(SFTConfig, None, ["model=tiny-random", "train.probe_every=5"])
