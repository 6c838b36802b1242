"""Reward model on the tiny random Llama: score by position, save/load, learning a separable set, scoring."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest
import torch

from alignkit.config.base import load_config
from alignkit.config.common import DataConfig
from alignkit.data.collate import pack, pad
from alignkit.data.dataset import PreferenceExample, load_preference_data
from alignkit.models.reward_head import (
    RewardModel,
    load_reward_model,
    reply_end,
    save_reward_model,
    score_sequences,
)
from alignkit.recipes.reward import RewardConfig, RewardObjective, ScoreConfig, run_reward, run_score

pytestmark = pytest.mark.usefixtures("one_thread")

TOY = Path(__file__).resolve().parents[1] / "assets" / "prefs_toy.jsonl"


@pytest.fixture(scope="module")
def toy_pairs(tiny_base) -> list[PreferenceExample]:
    pairs, _ = load_preference_data(str(TOY), tiny_base.tokenizer, DataConfig())
    return pairs


def _reward_model(tiny_base) -> RewardModel:
    torch.manual_seed(0)
    return RewardModel(copy.deepcopy(tiny_base.model)).eval()


def test_score_is_read_at_the_last_position_not_at_a_pad_id(tiny_base, toy_pairs):
    model = _reward_model(tiny_base)
    sequences = [reply_end(p.chosen_ids, p.chosen_mask) for p in toy_pairs[:3]]
    sequences.append(reply_end(toy_pairs[3].rejected_ids, toy_pairs[3].rejected_mask))
    eot = 2  # <|im_end|>: end of turn, eos and pad at once
    for ids, _ in sequences:
        assert ids[-1] == eot and eot in ids[:-1]  # "first pad id" would land on an earlier turn's end
    with torch.no_grad():
        packed = model(pack(sequences))
        padded = model(pad(sequences, pad_id=eot))  # right padding with the same id
        wider = model(pad([*sequences, (sequences[0][0] * 3, sequences[0][1] * 3)], pad_id=eot))[:4]
        alone = torch.cat([model(pack([seq])) for seq in sequences])
        hidden = model.lm.model(input_ids=torch.tensor([sequences[1][0]])).last_hidden_state
        by_hand = model.score_head(hidden[0, -1]).squeeze()
    torch.testing.assert_close(packed, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(wider, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(packed[1], by_hand, atol=1e-5, rtol=0)


def test_reply_end_cuts_the_template_tail(toy_pairs):
    pair = toy_pairs[0]
    ids, mask = reply_end(pair.chosen_ids, pair.chosen_mask)
    assert len(ids) == max(i for i, m in enumerate(pair.chosen_mask) if m) + 1
    assert mask[-1] == 1 and len(ids) < len(pair.chosen_ids)  # ChatML adds "\n" after <|im_end|>


def test_margin_column_enters_the_loss(tiny_base, toy_pairs):
    model = _reward_model(tiny_base)
    pairs = [dataclasses.replace(p, margin=2.0) for p in toy_pairs[:4]]
    losses = {}
    for use_margin in (False, True):
        objective = RewardObjective(
            packed=True,
            pad_id=2,
            use_margin=use_margin,
            center_rewards_coefficient=0.0,
            device=torch.device("cpu"),
        )
        with torch.no_grad():
            losses[use_margin] = float(objective.loss(model, pairs)[0])
    assert losses[True] > losses[False]  # -log σ(d - 2) > -log σ(d)


def test_full_trunk_save_and_load_round_trip(tiny_base, toy_pairs, tmp_path):
    model = _reward_model(tiny_base)
    sequences = [(p.chosen_ids, p.chosen_mask) for p in toy_pairs[:4]]
    before = score_sequences(model, sequences)
    save_reward_model(model, tiny_base.tokenizer, tmp_path / "rm", base_model="tiny-random")
    assert (tmp_path / "rm" / "trunk" / "model.safetensors").is_file()
    loaded = load_reward_model(tmp_path / "rm", device="cpu")
    assert loaded.config["trunk"] == "trunk"
    assert score_sequences(loaded.model, sequences) == pytest.approx(before, abs=1e-5)


def test_corrupt_reward_model_folder_is_refused(tiny_base, tmp_path):
    from alignkit.errors import ModelError

    save_reward_model(
        _reward_model(tiny_base), tiny_base.tokenizer, tmp_path / "rm", base_model="tiny-random"
    )
    (tmp_path / "rm" / "score_head.safetensors").write_bytes(b"not a head")
    with pytest.raises(ModelError, match="score_head.safetensors"):
        load_reward_model(tmp_path / "rm", device="cpu")


@pytest.fixture(scope="module")
def trained_rm(tmp_path_factory) -> Path:
    """A LoRA reward model trained for 20 steps on the polite-vs-rude toy pairs.

    lr 2e-3: at 1e-2 the LoRA run diverges to loss ln 2 on this tiny model; 2e-3 reaches
    loss < 0.15 for seeds 0-3.
    """
    out = tmp_path_factory.mktemp("rm")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cfg = load_config(
        RewardConfig,
        None,
        [
            f"data.train={TOY}",
            f"out={out}",
            "model=tiny-random",
            "device=cpu",
            "finetune=lora",
            "lora.r=8",
            "train.lr=2e-3",
            "train.batch_size=8",
            "train.max_steps=20",
            "train.schedule=constant",
        ],
    )
    run_reward(cfg)
    torch.set_num_threads(threads)
    return out / "reward_model"


def test_reward_model_separates_polite_from_rude(trained_rm, toy_pairs):
    loaded = load_reward_model(trained_rm, device="cpu")
    assert loaded.config["trunk"] == "adapter"
    chosen = score_sequences(loaded.model, [(p.chosen_ids, p.chosen_mask) for p in toy_pairs])
    rejected = score_sequences(loaded.model, [(p.rejected_ids, p.rejected_mask) for p in toy_pairs])
    accuracy = sum(c > r for c, r in zip(chosen, rejected, strict=True)) / len(toy_pairs)
    assert accuracy >= 0.95
    metrics = [json.loads(line) for line in (trained_rm.parent / "metrics.jsonl").read_text().splitlines()]
    assert metrics[0]["loss"] == pytest.approx(0.7, abs=0.1) and metrics[-1]["loss"] < 0.3


def test_score_command_writes_scores(trained_rm, tmp_path):
    from typer.testing import CliRunner

    from alignkit.cli import app

    records = tmp_path / "replies.jsonl"
    records.write_text(
        json.dumps({"prompt": "Can you help me?", "completion": "Of course, I'd be glad to help!"})
        + "\n"
        + json.dumps({"prompt": "Can you help me?", "completion": "No. Go away, idiot."})
        + "\n"
    )
    out = tmp_path / "scored.jsonl"
    result = CliRunner().invoke(
        app, ["score", "--model", str(trained_rm), f"data={records}", f"out={out}", "device=cpu"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["completion"] for row in rows] == ["Of course, I'd be glad to help!", "No. Go away, idiot."]
    assert rows[0]["score"] > rows[1]["score"]
    # Preference records get both scores, equal to what score_sequences gives.
    pairs_out = tmp_path / "pairs_scored.jsonl"
    run_score(ScoreConfig(model=str(trained_rm), data=str(TOY), out=str(pairs_out), device="cpu"))
    first = json.loads(pairs_out.read_text().splitlines()[0])
    assert first["chosen_score"] > first["rejected_score"]
