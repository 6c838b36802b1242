"""``alignkit probe`` and ``alignkit report`` through the real CLI on tiny-random (typer CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from alignkit.cli import app
from alignkit.evaluation.run import LogProbModel, mean_token_kl

TINY = ["--model", "tiny-random", "device=cpu", "batch_size=32"]
# Few greetings and short replies keep the probe run to seconds.
HELLO = ["hello.n_samples=3", "hello.max_new_tokens=6", "hello.prompts=[hello, hi, '']"]

CONVERSATIONS = [
    ("hello", "Hi! How can I help with your lamp today?"),
    ("how long does the battery last", "About fourteen hours at medium brightness, then it dims."),
    ("is it waterproof", "No. Keep it dry and wipe it with a soft cloth."),
    ("thanks", "You are welcome!"),
]


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def write_data(path: Path) -> Path:
    rows = [
        {"messages": [{"role": "user", "content": u}, {"role": "assistant", "content": a}]}
        for u, a in CONVERSATIONS
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def rate(rows: list[dict[str, Any]], key: str) -> float:
    return round(sum(bool(r[key]) for r in rows) / len(rows), 4)


@pytest.fixture(scope="module")
def hello_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    out = tmp_path_factory.mktemp("probe") / "hello"
    result = invoke("probe", *TINY, "--probes", "hello", "--out", str(out), *HELLO)
    return result, out


def test_hello_on_a_random_model_fails_and_writes_consistent_results(hello_run) -> None:
    result, out = hello_run
    assert result.exit_code == 1, result.output
    summary = read_json(out / "summary.json")
    rows = read_json(out / "hello.json")
    assert list(summary) == ["hello"]
    hello = summary["hello"]
    assert not hello["passed"] and hello["failures"]
    assert (out / "config.yaml").is_file() and "probes:\n- hello" in (out / "config.yaml").read_text()

    greedy = [r for r in rows if r["mode"] == "greedy"]
    sampled = [r for r in rows if r["mode"] == "sampled"]
    assert (len(greedy), len(sampled)) == (3, 9)
    assert hello["n_prompts"] == 3 and hello["n_samples"] == 3
    # A random model over a 49k vocabulary does not find the end-of-turn token in 6 tokens.
    assert hello["greedy_stop_rate"] == rate(greedy, "stopped") == 0.0
    assert hello["sampled_stop_rate"] == rate(sampled, "stopped") == 0.0
    assert all(r["length"] == 6 and r["finish_reason"] == "length" for r in rows)
    assert hello["length_p95"] == 6 and hello["length_mean"] == 6
    assert hello["leakage_rate"] == rate(rows, "leak")
    assert any("greedy_stop_rate" in f for f in hello["failures"])
    # The printed table names the probe, the verdict and why.
    assert "hello" in result.output and "FAIL" in result.output and "greedy_stop_rate" in result.output


def test_every_probe_runs_and_missing_inputs_are_skipped(tmp_path: Path) -> None:
    data = write_data(tmp_path / "train.jsonl")
    out = tmp_path / "all"
    result = invoke(
        "probe", *TINY, "--train-data", str(data), "--out", str(out), *HELLO, "regurgitation.max_new_tokens=8"
    )
    assert result.exit_code == 1, result.output
    summary = read_json(out / "summary.json")
    assert list(summary) == ["hello", "regurgitation", "repetition", "refusal", "grounded", "winrate"]
    assert summary["winrate"] == {"skipped": "no reward model given"}
    assert read_json(out / "winrate.json") == []
    assert "skipped" in result.output

    regurgitation = read_json(out / "regurgitation.json")
    # Three greetings, then the four training prompts.
    assert [r["prompt_set"] for r in regurgitation] == ["greetings"] * 3 + ["train_prompts"] * 4
    assert summary["regurgitation"]["max_span"] == max(r["span_length"] for r in regurgitation)
    assert summary["regurgitation"]["train_docs"] == 2 * len(CONVERSATIONS)  # each reply + each conversation

    # Repetition scored the hello and grounded replies instead of sampling again.
    repetition = read_json(out / "repetition.json")
    hello_rows, grounded_rows = read_json(out / "hello.json"), read_json(out / "grounded.json")
    assert len(repetition) == len(hello_rows) + len(grounded_rows)
    assert {r["source"] for r in repetition} == {"hello", "grounded"}
    assert summary["repetition"]["loop_rate"] == rate(repetition, "loop")

    refusal = read_json(out / "refusal.json")
    harmful = [r for r in refusal if r["set"] == "harmful"]
    assert summary["refusal"]["refusal_rate"] == rate(harmful, "refused")


def test_regurgitation_without_training_data_is_skipped_not_failed(tmp_path: Path) -> None:
    out = tmp_path / "noreg"
    result = invoke("probe", *TINY, "--probes", "regurgitation", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert read_json(out / "summary.json") == {
        "regurgitation": {"skipped": "no training data given (--train-data PATH)"}
    }


def _random_lora_adapter(folder: Path) -> Path:
    """A LoRA adapter on tiny-random whose B matrices are non-zero, so it changes the model."""
    from peft import LoraConfig, get_peft_model

    from alignkit.models.loader import load_model

    base = load_model("tiny-random", device="cpu").model
    torch.manual_seed(1)
    model = get_peft_model(
        base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    model.save_pretrained(folder)
    return folder


def _reward_model(folder: Path) -> Path:
    from alignkit.models.loader import load_model
    from alignkit.models.reward_head import RewardModel, save_reward_model

    loaded = load_model("tiny-random", device="cpu")
    torch.manual_seed(2)
    save_reward_model(RewardModel(loaded.model), loaded.tokenizer, folder, base_model="tiny-random")
    return folder


def test_winrate_with_a_reward_model_against_the_adapter_disabled_base(tmp_path: Path) -> None:
    adapter = _random_lora_adapter(tmp_path / "adapter")
    rm = _reward_model(tmp_path / "rm")
    out = tmp_path / "winrate"
    result = invoke(
        "probe",
        *TINY,
        "--adapter",
        str(adapter),
        "--reward-model",
        str(rm),
        "--probes",
        "winrate",
        "--out",
        str(out),
        "winrate.max_prompts=3",
        "winrate.max_new_tokens=5",
        "thresholds.min_win_rate=null",
    )
    assert result.exit_code == 0, result.output
    summary = read_json(out / "summary.json")["winrate"]
    rows = read_json(out / "winrate.json")
    assert summary["n_pairs"] == len(rows) == 3
    assert summary["wins"] + summary["ties"] + summary["losses"] == 3
    assert summary["mean_kl"] is not None and summary["mean_kl"] != 0.0
    # Policy and reference differ only by the adapter: their replies differ somewhere.
    assert any(r["policy_text"] != r["reference_text"] for r in rows)


def test_mean_token_kl_matches_a_full_forward_by_hand(tiny_model) -> None:
    """KL estimate = mean over reply tokens of log pi(y_t) - log pi_ref(y_t), from plain logits.

    The reference here is the same model with its logits scaled by 1/2 (a different distribution
    over the same tokens); the expected value uses one unpacked forward per sequence.
    """
    model = tiny_model.model
    sequences = [([5, 17, 99, 3000, 42], [0, 0, 1, 1, 1]), ([7, 8, 9], [0, 1, 1])]

    class Halved(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, hidden: torch.Tensor) -> torch.Tensor:
            return self.inner(hidden) / 2

    original_head = model.lm_head
    expected_diffs = []
    with torch.no_grad():
        for ids, mask in sequences:
            logits = model(torch.tensor([ids])).logits[0]
            logp = logits.log_softmax(-1)
            logp_ref = (logits / 2).log_softmax(-1)
            for t in range(1, len(ids)):
                if mask[t]:
                    expected_diffs.append(float(logp[t - 1, ids[t]] - logp_ref[t - 1, ids[t]]))
    expected = sum(expected_diffs) / len(expected_diffs)

    import contextlib

    @contextlib.contextmanager
    def halved_head():
        model.lm_head = Halved(original_head)
        try:
            yield
        finally:
            model.lm_head = original_head

    got = mean_token_kl(LogProbModel(model), LogProbModel(model, halved_head), sequences, batch_size=1)
    assert got == pytest.approx(expected, abs=1e-5)
    assert mean_token_kl(LogProbModel(model), LogProbModel(model), sequences) == pytest.approx(0.0, abs=1e-6)


def test_report_from_an_sft_run_and_a_probe_folder(tmp_path: Path, hello_run) -> None:
    _, probe_dir = hello_run
    data = write_data(tmp_path / "train.jsonl")
    sft_dir = tmp_path / "sft"
    result = invoke(
        "sft",
        "model=tiny-random",
        f"data.train={data}",
        f"out={sft_dir}",
        "finetune=full",
        "train.max_steps=2",
        "train.batch_size=2",
        "device=cpu",
    )
    assert result.exit_code == 0, result.output
    html_path = tmp_path / "report.html"
    result = invoke(
        "report", str(sft_dir), str(probe_dir), "--out", str(html_path), "--labels", "trained,probed"
    )
    assert result.exit_code == 0, result.output
    page = html_path.read_text()
    assert 'data-plot="loss:trained"' in page and 'data-plot="probes"' in page
    assert page.count('src="data:image/png;base64,') >= 2
    assert "sampled_stop_rate" in page and "FAIL" in page


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["probe", "--model", "tiny-random"], "out: expected an output folder"),
        (["probe", "--model", "tiny-random", "--probes", "hello,nope", "--out", "x"], "unknown probe 'nope'"),
        (["probe", "--model", "tiny-random", "--out", "x", "hello.temperature=0.2"], "hello.temperature"),
        (["probe", "--model", "tiny-random", "--out", "x", "helo.n_samples=2"], "did you mean"),
        (["report", "--out", "r.html"], "expected at least one run folder"),
        (["report", "some_dir"], "expected an output file: --out report.html"),
        (["report", "does/not/exist", "--out", "r.html"], "does/not/exist: run folder not found"),
        (["report", "a", "b", "--out", "r.html", "--labels", "one"], "1 labels for 2 run folders"),
        (["report", "a", "--bogus", "--out", "r.html"], "unknown option '--bogus'"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    tmp_path: Path, monkeypatch, args: list[str], expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("a", "b", "some_dir"):
        (tmp_path / name).mkdir()
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.stderr
    assert not (tmp_path / "x" / "summary.json").exists() and not (tmp_path / "r.html").exists()


def test_winrate_takes_any_reward_source_of_ppo(tmp_path: Path) -> None:
    """``winrate.reward`` is the PPO/GRPO reward section: here a function, whose scores the rows carry."""
    from alignkit.rewards.examples import short_and_stops

    adapter = _random_lora_adapter(tmp_path / "adapter")
    out = tmp_path / "winrate"
    result = invoke(
        "probe", *TINY, "--adapter", str(adapter), "--probes", "winrate", "--out", str(out),
        "winrate.reward.kind=function", "winrate.reward.function=alignkit.rewards.examples:short_and_stops",
        "winrate.max_prompts=3", "winrate.max_new_tokens=5", "thresholds.min_win_rate=null",
    )
    assert result.exit_code == 0, result.output
    rows = read_json(out / "winrate.json")
    assert len(rows) == 3
    for row in rows:
        chat = [{"role": "user", "content": row["prompt"]}]
        assert row["policy_score"] == short_and_stops(chat, row["policy_text"])
        assert row["reference_score"] == short_and_stops(chat, row["reference_text"])
    both = invoke("probe", *TINY, "--adapter", str(adapter), "--probes", "winrate", "--out", str(out),
                  "--reward-model", str(tmp_path), "winrate.reward.kind=function")
    assert both.exit_code == 2 and "give reward_model or winrate.reward, not both" in both.output
