"""``alignkit prefs``: sampling, judging, filtering and pairing of candidate replies."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from alignkit.config.base import load_config
from alignkit.generation.types import Chat, Generation, GenerationParams
from alignkit.rewards.scorers import LLMJudge, RewardModelScorer, parse_rating
from alignkit.synth.prefs import (
    PrefsConfig,
    build_preferences,
    run_prefs,
    select_pairs,
)

pytestmark = pytest.mark.usefixtures("one_thread")


class FixedPolicy:
    """A Generator returning the same candidate texts for every chat."""

    def __init__(self, texts: list[str], stopped: bool = True) -> None:
        self.texts = texts
        self.stopped = stopped

    def chat(self, chats: list[Chat], params: GenerationParams) -> list[list[Generation]]:
        return [[Generation(text=t, stopped=self.stopped) for t in self.texts] for _ in chats]


class RatingJudgeModel:
    """A Generator standing in for an LLM judge: answers with the rating found in ``ratings``."""

    def __init__(self, ratings: dict[str, str]) -> None:
        self.ratings = ratings

    def chat(self, chats: list[Chat], params: GenerationParams) -> list[list[Generation]]:
        out = []
        for chat in chats:
            reply = chat[-1]["content"].split("Assistant's reply:\n", 1)[1].split("\n\nScore", 1)[0]
            out.append([Generation(text=self.ratings[reply], stopped=True)])
        return out


def test_parse_rating():
    assert parse_rating("8") == 8.0
    assert parse_rating("Score: 10/10") == 10.0
    assert parse_rating("I'd say 7.") == 7.0
    assert parse_rating("8.5") is None
    assert parse_rating("no idea") is None


def test_select_pairs_modes_ties_and_gap():
    scored = [("a", 3.0), ("b", 9.0), ("c", 3.0), ("d", 8.0)]
    best, ties, below = select_pairs(scored, mode="best_vs_worst", min_gap=0.0)
    assert best == [(("b", 9.0), ("a", 3.0))] and (ties, below) == (0, 0)
    pairs, ties, below = select_pairs(scored, mode="all_pairs", min_gap=2.0)
    assert {(c[0], r[0]) for c, r in pairs} == {("b", "a"), ("b", "c"), ("d", "a"), ("d", "c")}
    assert ties == 1 and below == 1  # a = c; b - d = 1 < 2
    assert select_pairs([("x", 5.0), ("y", 5.0)], mode="best_vs_worst", min_gap=0.0) == ([], 1, 0)


def test_duplicates_ties_and_unscorable_are_dropped_and_counted():
    chats = [[{"role": "user", "content": "Hi"}], [{"role": "user", "content": "Help?"}]]
    policy = FixedPolicy(["Hello there!", "Hello  there! ", "", "Get lost.", "Sure thing.", "Hmm"])
    judge = LLMJudge(
        RatingJudgeModel(
            {"Hello there!": "Score: 9", "Get lost.": "2", "Sure thing.": "9", "Hmm": "I cannot rate this"}
        )
    )
    rows, report = build_preferences(
        chats, policy, judge, params=GenerationParams(num_samples=6), mode="all_pairs"
    )
    assert report.candidates == 12
    assert report.dropped == {"duplicate": 2, "empty": 2, "unscored": 2}
    assert report.ties == 2  # "Hello there!" and "Sure thing." both 9, once per prompt
    assert report.pairs == len(rows) == 4
    assert all(row["chosen_score"] > row["rejected_score"] for row in rows)
    assert {row["rejected"] for row in rows} == {"Get lost."}
    assert rows[0]["prompt"] == "Hi"
    unfinished, report = build_preferences(
        chats[:1], FixedPolicy(["a", "b"], stopped=False), judge, params=GenerationParams(num_samples=2)
    )
    assert unfinished == [] and report.dropped == {"unfinished": 2} and report.prompts_without_pair == 1


@pytest.fixture(scope="module")
def random_reward_model(tmp_path_factory) -> Path:
    """A reward model folder: the tiny random trunk with a random head (a judge need not be good)."""
    from alignkit.models.loader import load_model
    from alignkit.models.reward_head import RewardModel, save_reward_model

    loaded = load_model("tiny-random", device="cpu", seed=0)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("judge") / "rm"
    save_reward_model(
        RewardModel(copy.deepcopy(loaded.model)), loaded.tokenizer, folder, base_model="tiny-random"
    )
    return folder


def test_prefs_with_reward_model_judge(random_reward_model, tmp_path):
    from alignkit.models.reward_head import load_reward_model

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        "".join(json.dumps({"prompt": p}) + "\n" for p in ("Hello!", "What is 2+2?", "Tell a joke"))
    )
    out = tmp_path / "prefs.jsonl"
    cfg = load_config(
        PrefsConfig,
        None,
        [
            "model=tiny-random",
            "device=cpu",
            f"prompts={prompts}",
            f"out={out}",
            "num_candidates=4",
            "generation.max_new_tokens=6",
            "generation.temperature=1.0",
            "drop_unfinished=false",
            f"judge.reward_model={random_reward_model}",
            "pairs=all_pairs",
        ],
    )
    report = run_prefs(cfg)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert report.prompts == 3 and report.candidates == 12 and report.pairs == len(rows) > 0
    assert json.loads(Path(f"{out}.report.json").read_text())["pairs"] == len(rows)
    for row in rows:
        assert row["chosen_score"] >= row["rejected_score"]
        assert set(row) == {"prompt", "chosen", "rejected", "chosen_score", "rejected_score"}
    # The written scores are what the reward model gives the formatted (prompt, reply).
    judge = RewardModelScorer(load_reward_model(random_reward_model, device="cpu"))
    chat = [{"role": "user", "content": rows[0]["prompt"]}]
    again = judge.score([chat, chat], [rows[0]["chosen"], rows[0]["rejected"]])
    assert again == pytest.approx([rows[0]["chosen_score"], rows[0]["rejected_score"]], abs=1e-5)
    # The output is valid preference data for alignkit dpo / rm.
    from alignkit.data.records import load_records

    records, _ = load_records(str(out), kind="preference")
    assert len(records) == len(rows)


def test_cli_prefs_and_rm_print_config():
    from typer.testing import CliRunner

    from alignkit.cli import app

    runner = CliRunner()
    prefs = runner.invoke(
        app, ["prefs", "--print-config", "--model", "tiny-random", "judge.kind=llm", "min_gap=2"]
    )
    assert prefs.exit_code == 0 and "kind: llm" in prefs.output and "temperature: 0.8" in prefs.output
    rm = runner.invoke(app, ["rm", "--print-config", "center_rewards_coefficient=0.01", "finetune=full"])
    assert rm.exit_code == 0 and "center_rewards_coefficient: 0.01" in rm.output
    bad = runner.invoke(
        app, ["prefs", "--model", "tiny-random", "prompts=p.txt", "out=o.jsonl", "pairs=best"]
    )
    assert bad.exit_code == 2 and "pairs" in bad.output
