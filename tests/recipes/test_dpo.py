"""DPO recipe on the tiny random Llama: packed log-probs, log 2 at step 0, learning, reference cache, resume."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from alignkit.config.base import load_config
from alignkit.config.common import DataConfig
from alignkit.data.collate import pack
from alignkit.data.dataset import load_preference_data
from alignkit.errors import AlignkitError, ConfigError
from alignkit.models.reference import Reference
from alignkit.recipes.dpo import (
    REFERENCE_CACHE,
    DPOConfig,
    DPOObjective,
    ModelReference,
    pair_batch,
    preference_loss,
    resolve_reference,
    run_dpo,
    sequence_logps,
)

pytestmark = pytest.mark.usefixtures("one_thread")

TOY = Path(__file__).resolve().parents[1] / "assets" / "prefs_toy.jsonl"
LOG2_F32 = float(torch.tensor(math.log(2.0), dtype=torch.float32))


def _subset(tmp_path: Path, count: int, name: str = "pairs.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(TOY.read_text().splitlines(keepends=True)[:count]))
    return path


def _config(data: Path, out: Path, *extra: str) -> DPOConfig:
    base = [
        f"data.train={data}",
        f"out={out}",
        "model=tiny-random",
        "device=cpu",
        "train.batch_size=4",
        "train.lr=5e-3",
        "train.schedule=constant",
        "lora.r=4",
        "resume=auto",
    ]
    return load_config(DPOConfig, None, [*base, *extra])


def _metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture()
def model(tiny_base):
    """A fresh copy of the seeded tiny model (cheaper than building one per test)."""
    return copy.deepcopy(tiny_base.model)


@pytest.fixture()
def toy_pairs(tokenizer):
    pairs, _ = load_preference_data(str(TOY), tokenizer, DataConfig())
    return pairs[:3]


def _unpacked_logps(model, ids: list[int], mask: list[int]) -> float:
    """Plain forward of one sequence; sum of log p(token) over its trained tokens (not the first)."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    logps = torch.log_softmax(logits[:-1], dim=-1).gather(-1, torch.tensor(ids[1:])[:, None])[:, 0]
    return float((logps * torch.tensor(mask[1:], dtype=torch.float32)).sum())


def test_packed_pair_logps_equal_separate_forwards(model, toy_pairs):
    batch = pair_batch(toy_pairs, packed=True, pad_id=2)
    assert batch.input_ids.shape[0] == 1 and batch.num_sequences == 6  # one row holds all 6 completions
    sequences = [(p.chosen_ids, p.chosen_mask) for p in toy_pairs] + [
        (p.rejected_ids, p.rejected_mask) for p in toy_pairs
    ]
    with torch.no_grad():
        logps, lengths = sequence_logps(model, batch, chunk_size=7)  # several chunks
        separate = torch.cat([sequence_logps(model, pack([seq]))[0] for seq in sequences])
    torch.testing.assert_close(logps, separate, atol=1e-5, rtol=0)
    # Independently of our forward: transformers' own logits, one sequence at a time. The sums
    # (~ -260) differ from ours only by float32 rounding of the summation order.
    plain = torch.tensor([_unpacked_logps(model, ids, mask) for ids, mask in sequences])
    torch.testing.assert_close(logps, plain, atol=1e-5, rtol=1e-6)
    assert lengths.tolist() == [sum(mask[1:]) for _, mask in sequences]
    with torch.no_grad():
        padded, _ = sequence_logps(model, pair_batch(toy_pairs, packed=False, pad_id=2))
    torch.testing.assert_close(padded, logps, atol=1e-5, rtol=0)


def test_packed_logps_gradient_matches_with_chunk_checkpointing(model, toy_pairs):
    """Recomputing the vocabulary projection per chunk in backward gives the same gradient."""
    batch = pair_batch(toy_pairs, packed=True, pad_id=2)
    grads = []
    for chunk_size in (8, 4096):
        model.zero_grad()
        sequence_logps(model, batch, chunk_size=chunk_size)[0].sum().backward()
        grads.append(model.model.embed_tokens.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("reference_kind", ["copy", "adapter_disabled"])
def test_policy_equal_to_reference_gives_log2(model, toy_pairs, reference_kind):
    from alignkit.config.training import LoraSection
    from alignkit.models.adapters import apply_lora

    model = apply_lora(model, LoraSection(r=4))
    reference = ModelReference(Reference(model, kind=reference_kind), 64)
    pairs = toy_pairs + toy_pairs[:1]  # 4 pairs: log 2 * 4 / 4 stays exact in float32
    objective = DPOObjective(
        loss="sigmoid",
        beta=0.1,
        label_smoothing=0.0,
        simpo_gamma=0.0,
        reference=reference,
        packed=True,
        pad_id=2,
        chunk_size=64,
        device=torch.device("cpu"),
    )
    loss, metrics = objective.loss(model, pairs)
    assert float(loss) / objective.normalizer(pairs) == LOG2_F32
    assert metrics["rewards/margin"] == 0.0 and metrics["rewards/accuracy"] == 0.0


@pytest.mark.parametrize(("loss", "expected"), [("ipo", 25.0), ("cdpo", LOG2_F32)])
def test_other_losses_at_policy_equal_reference(model, toy_pairs, loss, expected):
    """IPO: (0 - 1/(2·0.1))² = 25; cDPO: -(1-ε)log σ(0) - ε log σ(0) = log 2."""
    objective = DPOObjective(
        loss=loss,
        beta=0.1,
        label_smoothing=0.1 if loss == "cdpo" else 0.0,
        simpo_gamma=0.0,
        reference=ModelReference(Reference(model, kind="copy"), 64),
        packed=True,
        pad_id=2,
        chunk_size=64,
        device=torch.device("cpu"),
    )
    value, _ = objective.loss(model, toy_pairs[:2])
    assert float(value) / 2 == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("loss", ["simpo", "orpo"])
def test_reference_free_losses_train(model, toy_pairs, loss):
    objective = DPOObjective(
        loss=loss,
        beta=2.0,
        label_smoothing=0.0,
        simpo_gamma=0.5,
        reference=None,
        packed=True,
        pad_id=2,
        chunk_size=64,
        device=torch.device("cpu"),
    )
    value, metrics = objective.loss(model, toy_pairs)
    value.backward()
    assert math.isfinite(float(value)) and model.model.embed_tokens.weight.grad is not None
    assert set(metrics) >= {"rewards/chosen", "rewards/margin", "logps/chosen", "logps/rejected"}


def test_reference_choices_and_refusals(tmp_path):
    def cfg(*extra: str) -> DPOConfig:
        return _config(tmp_path / "d.jsonl", tmp_path / "out", *extra)

    assert resolve_reference(cfg()) == "adapter_disabled"
    assert resolve_reference(cfg("finetune=full")) == "copy"
    assert resolve_reference(cfg("adapter=/some/sft/adapter")) == "precomputed"
    assert resolve_reference(cfg("loss=simpo")) == "none"
    for bad in (
        ["loss=cdpo"],
        ["loss=orpo", "reference=copy"],
        ["reference=none"],
        ["finetune=full", "reference=adapter_disabled"],
        ["adapter=/x", "reference=adapter_disabled"],
        ["loss=orpo", "sft_weight=1.0"],
    ):
        with pytest.raises(ConfigError):
            resolve_reference(cfg(*bad))


def test_dpo_starts_at_log2_and_raises_the_training_margin(tmp_path):
    data = _subset(tmp_path, 8)
    out = tmp_path / "run"
    guard = ("train.inject_nonfinite_at=[3]", "train.max_nonfinite_steps=1")  # the loop's guard, through DPO
    run_dpo(_config(data, out, "train.max_steps=12", f"data.eval={data}", "train.eval_every=12", *guard))
    lines = _metrics(out)
    train = [line for line in lines if line["kind"] == "train"]
    assert train[0]["loss"] == LOG2_F32  # policy == reference (LoRA B = 0) at step 0
    assert train[0]["rewards/margin"] == 0.0
    assert [line["step"] for line in lines if line["kind"] == "nonfinite"] == [3]
    assert json.loads((out / "run.json").read_text())["nonfinite_steps"] == 1
    final_eval = [line for line in lines if line["kind"] == "eval"][-1]
    assert final_eval["eval_rewards/margin"] > 0.05  # was exactly 0 before training
    assert final_eval["eval_rewards/accuracy"] >= 0.75
    assert (out / "adapter" / "adapter_config.json").is_file()
    assert json.loads((out / "run.json").read_text())["reference"] == "adapter_disabled"


def test_precomputed_reference_is_cached_and_refused_after_data_changes(tmp_path):
    data = _subset(tmp_path, 6)
    out = tmp_path / "run"
    run_dpo(_config(data, out, "train.max_steps=1", "finetune=full", "reference=precomputed"))
    cache = out / REFERENCE_CACHE
    assert cache.is_file()
    assert load_file(str(cache))["train"].shape == (6, 2)
    assert _metrics(out)[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)
    records = data.read_text().splitlines()
    first = json.loads(records[0])
    first["chosen"] += " Have a lovely day!"
    data.write_text("\n".join([json.dumps(first), *records[1:]]) + "\n")
    with pytest.raises(AlignkitError, match="other data"):
        run_dpo(_config(data, out, "train.max_steps=2", "finetune=full", "reference=precomputed"))


def test_resume_is_bit_identical_and_reuses_the_reference_cache(tmp_path):
    data = _subset(tmp_path, 8)
    extra = ("train.max_steps=4", "train.batch_size=2", "reference=precomputed", "lora.dropout=0.1")
    straight, split = tmp_path / "straight", tmp_path / "split"
    run_dpo(_config(data, straight, *extra))
    run_dpo(_config(data, split, *extra), stop_after_step=2)
    cache_written = (split / REFERENCE_CACHE).stat().st_mtime_ns
    run_dpo(_config(data, split, *extra))
    assert (split / REFERENCE_CACHE).stat().st_mtime_ns == cache_written  # reused, not recomputed
    a = load_file(str(straight / "checkpoints" / "step-000004" / "trainable.safetensors"))
    b = load_file(str(split / "checkpoints" / "step-000004" / "trainable.safetensors"))
    assert a.keys() == b.keys() and len(a) > 0
    for name in a:
        assert torch.equal(a[name], b[name]), name
    losses = [line["loss"] for line in _metrics(straight) if line["kind"] == "train"]
    assert losses == [line["loss"] for line in _metrics(split) if line["kind"] == "train"]


def test_cli_dpo_print_config_and_bad_combination(tmp_path):
    from typer.testing import CliRunner

    from alignkit.cli import app

    runner = CliRunner()
    printed = runner.invoke(app, ["dpo", "--print-config", "loss=ipo", "beta=0.5"])
    assert printed.exit_code == 0 and "loss: ipo" in printed.output
    refused = runner.invoke(app, ["dpo", f"data.train={TOY}", "loss=simpo", "reference=copy"])
    assert refused.exit_code == 2 and "reference-free" in refused.output


def test_sft_weight_adds_the_chosen_per_token_nll():
    """RPO: loss = DPO + α · (-chosen logp / chosen length), per example.

    Pair 1: chosen -4 over 2 tokens, rejected -6, reference -5 and -5, β = 0.1:
        DPO = -log σ(0.1 · ((-4 + 5) - (-6 + 5))) = -log σ(0.2) = 0.598139
        NLL = 4 / 2 = 2, so with α = 0.5 the loss is 0.598139 + 1.0 = 1.598139.
    Pair 2: chosen -3 over 3 tokens, rejected -3, reference -3 and -3: DPO = log 2 = 0.693147,
        NLL = 1, loss = 0.693147 + 0.5 = 1.193147.
    """
    logps = torch.tensor([-4.0, -3.0, -6.0, -3.0])
    lengths = torch.tensor([2, 3, 4, 3])
    ref = torch.tensor([-5.0, -3.0, -5.0, -3.0])
    plain = preference_loss("sigmoid", logps, lengths, ref, beta=0.1, label_smoothing=0.0, simpo_gamma=0.5)
    rpo = preference_loss("sigmoid", logps, lengths, ref, beta=0.1, label_smoothing=0.0, simpo_gamma=0.5,
                          sft_weight=0.5)
    torch.testing.assert_close(plain.losses, torch.tensor([0.598139, 0.693147]), atol=1e-6, rtol=0)
    torch.testing.assert_close(rpo.losses, torch.tensor([1.598139, 1.193147]), atol=1e-6, rtol=0)
    torch.testing.assert_close(rpo.chosen_rewards, plain.chosen_rewards)
