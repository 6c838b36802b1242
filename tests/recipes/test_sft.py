"""SFT and the shared loop on tiny-random: overfit + stop, packing, invariance, guard, params."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from alignkit.data.collate import pack, pad
from alignkit.data.dataset import Example
from alignkit.data.formatting import format_chat
from alignkit.generation.local import LocalGenerator
from alignkit.generation.types import GenerationParams
from alignkit.recipes.sft import SFTConfig, SFTObjective, run_sft
from alignkit.training.checkpoint import trainable_state
from tests.helpers.data import CONVERSATIONS
from tests.helpers.sft import losses, sft_config


def final_weights(cfg: SFTConfig) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    ckpts = sorted((Path(cfg.out) / "checkpoints").glob("step-*"))
    return load_file(str(ckpts[-1] / "trainable.safetensors"))


def test_overfit_reproduces_reply_and_stops(tmp_path: Path) -> None:
    cfg = sft_config(tmp_path, "train.max_steps=80", "train.batch_size=8", "train.lr=3e-3")
    run_sft(cfg)
    assert losses(cfg)[-1] < 0.1
    from alignkit.models.loader import load_model

    loaded = load_model(str(Path(cfg.out) / "model"), device="cpu")
    generator = LocalGenerator(loaded.model, loaded.tokenizer)
    chats = [[{"role": "user", "content": user}] for user, _ in CONVERSATIONS[:3]]
    replies = generator.chat(chats, GenerationParams(max_new_tokens=30))
    for (_, target), (reply,) in zip(CONVERSATIONS[:3], replies, strict=True):
        assert reply.text == target
        assert reply.stopped and reply.token_ids[-1] == 2  # <|im_end|>


def _examples(tokenizer) -> list[Example]:
    out = []
    for index, (user, reply) in enumerate(CONVERSATIONS[:4]):
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
        formatted = format_chat(tokenizer, messages)
        out.append(Example(formatted.input_ids, formatted.loss_mask, "mem", index + 1, index))
    return out


def test_packed_logits_equal_separate_forwards(tiny_model) -> None:
    model, tokenizer = tiny_model.model, tiny_model.tokenizer
    examples = _examples(tokenizer)
    batch = pack([(e.input_ids, e.loss_mask) for e in examples])
    with torch.no_grad():
        packed = model(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False).logits[0]
        offset = 0
        for example in examples:
            ids = torch.tensor([example.input_ids])
            alone = model(input_ids=ids, use_cache=False).logits[0]
            torch.testing.assert_close(packed[offset : offset + len(example.input_ids)], alone, atol=1e-5, rtol=0)
            offset += len(example.input_ids)


def test_packed_loss_equals_padded_loss(tiny_model) -> None:
    model, tokenizer = tiny_model.model, tiny_model.tokenizer
    examples = _examples(tokenizer)
    packed = SFTObjective(packed=True, pad_id=2, chunk_size=7, device=torch.device("cpu"))
    padded = SFTObjective(packed=False, pad_id=2, chunk_size=1024, device=torch.device("cpu"))
    with torch.no_grad():
        a, _ = packed.loss(model, examples)
        b, _ = padded.loss(model, examples)
    assert packed.normalizer(examples) == padded.normalizer(examples) > 0
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    # Hand check against a plain full-vocabulary cross entropy on one example.
    example = examples[0]
    batch = pad([(example.input_ids, example.loss_mask)], 2)
    with torch.no_grad():
        logits = model(input_ids=batch.input_ids).logits[0, :-1]
        targets = batch.input_ids[0, 1:]
        keep = batch.loss_mask[0, 1:].bool()
        expected = torch.nn.functional.cross_entropy(logits[keep], targets[keep], reduction="sum")
        got, _ = packed.loss(model, [example])
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-6)


def test_microbatch_times_accumulation_invariance(tmp_path: Path) -> None:
    a = sft_config(tmp_path / "a", "train.batch_size=4", "train.grad_accum=1")
    b = sft_config(tmp_path / "b", "train.batch_size=1", "train.grad_accum=4")
    run_sft(a)
    run_sft(b)
    first_a, *rest_a = losses(a)
    first_b, *rest_b = losses(b)
    assert abs(first_a - first_b) < 1e-5  # same weights, same global batch: the invariance itself
    # Later steps start from weights that differ by float rounding, which Adam amplifies a little.
    for x, y in zip(rest_a, rest_b, strict=True):
        assert abs(x - y) < 1e-4


def test_accumulated_gradient_equals_full_batch_gradient(tiny_model) -> None:
    """Adam amplifies float noise in near-zero gradients, so the gradient itself is compared."""
    model, tokenizer = tiny_model.model, tiny_model.tokenizer
    examples = _examples(tokenizer)
    objective = SFTObjective(packed=True, pad_id=2, chunk_size=1024, device=torch.device("cpu"))

    def grads(micro_batches) -> dict[str, torch.Tensor]:
        model.zero_grad()
        norm = sum(objective.normalizer(mb) for mb in micro_batches)
        for micro in micro_batches:
            loss, _ = objective.loss(model, micro)
            (loss / norm).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    whole = grads([examples])
    split = grads([[e] for e in examples])
    for name in whole:
        torch.testing.assert_close(whole[name], split[name], atol=1e-6, rtol=1e-4)


def test_padded_mode_trains_like_packed(tmp_path: Path) -> None:
    a = sft_config(tmp_path / "a", "train.packing=true")
    b = sft_config(tmp_path / "b", "train.packing=false")
    run_sft(a)
    run_sft(b)
    for x, y in zip(losses(a), losses(b), strict=True):
        assert abs(x - y) < 1e-5


def test_nonfinite_step_is_skipped_and_weights_unchanged(tmp_path: Path) -> None:
    one = sft_config(tmp_path / "one", "train.max_steps=1", "train.save_every=1")
    run_sft(one)
    skipped = sft_config(tmp_path / "nan", "train.max_steps=2", "train.inject_nonfinite_at=[2]")
    result = run_sft(skipped)
    assert result.state.nonfinite_steps == 1 and result.state.optimizer_steps == 1
    w1, w2 = final_weights(one), final_weights(skipped)
    for name in w1:
        assert torch.equal(w1[name], w2[name])
    lines = [json.loads(x) for x in (Path(skipped.out) / "metrics.jsonl").read_text().splitlines()]
    bad = [x for x in lines if x["kind"] == "nonfinite"]
    assert len(bad) == 1 and bad[0]["step"] == 2 and bad[0]["records"]


def test_nonfinite_abort_policy(tmp_path: Path) -> None:
    from alignkit.training.step import NonFiniteAbort

    cfg = sft_config(tmp_path, "train.max_steps=4", "train.inject_nonfinite_at=[1,2]", "train.max_nonfinite_steps=1")
    with pytest.raises(NonFiniteAbort, match="non-finite"):
        run_sft(cfg)


def test_lora_changes_trainable_only(tmp_path: Path) -> None:
    from alignkit.models.loader import load_model
    from alignkit.training.distributed import Distributed
    from alignkit.training.setup import prepare_model

    cfg = sft_config(tmp_path, "finetune=lora", "lora.r=4", "train.max_steps=3")
    run_sft(cfg)
    base = load_model("tiny-random", device="cpu").model
    _, fresh = prepare_model(cfg, Distributed())
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    from peft import PeftModel

    trained = PeftModel.from_pretrained(load_model("tiny-random", device="cpu").model, Path(cfg.out) / "adapter")
    after = trained.state_dict()
    lora_keys = [k for k in before if "lora_B" in k]
    assert lora_keys and all(not torch.equal(before[k], after[k.replace(".default", ".default")]) for k in lora_keys)
    for name, tensor in base.state_dict().items():
        key = f"base_model.model.{name}".replace(".weight", ".base_layer.weight")
        peft_tensor = after.get(key, after.get(f"base_model.model.{name}"))
        assert peft_tensor is not None and torch.equal(tensor, peft_tensor), name
    assert trainable_state(fresh)  # LoRA made something trainable


def test_lint_failure_is_refused(tmp_path: Path) -> None:
    from alignkit.errors import DataError

    cfg = sft_config(tmp_path, "data.raw_text=true", "data.add_eos=false")
    with pytest.raises(DataError, match="end-of-turn"):
        run_sft(cfg)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU error")
def test_qlora_on_cpu_is_a_clear_error(tmp_path: Path) -> None:
    from alignkit.errors import ModelError

    cfg = sft_config(tmp_path, "finetune=qlora")
    with pytest.raises(ModelError, match="QLoRA .* needs CUDA"):
        run_sft(cfg)
