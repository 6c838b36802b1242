"""Packed attention: per-sequence kernels give what separate forwards give, and nothing else changes."""

from __future__ import annotations

import copy

import pytest
import torch

from alignkit.data.collate import pack, pad
from alignkit.models.attention import (
    PACKED_ATTENTION,
    cu_seq_lens,
    supports_packed_attention,
    use_packed_attention,
    uses_packed_attention,
)
from alignkit.models.forward import hidden_states

SEQUENCES = [
    ([1, 17, 230, 5, 88, 2], [0, 0, 1, 1, 1, 1]),
    ([1, 9, 2], [0, 1, 1]),
    ([1, 400, 401, 402, 403, 404, 405, 406, 2], [0, 0, 0, 0, 1, 1, 1, 1, 1]),
    ([1, 33, 34, 2], [0, 0, 1, 1]),
]


@pytest.fixture()
def models(tiny_model):
    dense = tiny_model.model.eval()
    packed = copy.deepcopy(dense)
    assert use_packed_attention(packed)
    return dense, packed


def test_cu_seq_lens_marks_each_sequence_start():
    seq_ids = torch.tensor([[0, 0, 0, 1, 2, 2, 3]])
    assert cu_seq_lens(seq_ids).tolist() == [0, 3, 4, 6, 7]
    assert cu_seq_lens(seq_ids).dtype == torch.int32


def test_switch_is_on_the_model_and_its_copies(models):
    dense, packed = models
    assert uses_packed_attention(packed) and not uses_packed_attention(dense)
    assert packed.config._attn_implementation == PACKED_ATTENTION
    assert uses_packed_attention(copy.deepcopy(packed))


def test_packed_row_equals_separate_forwards_and_the_dense_mask_path(models):
    dense, packed = models
    batch = pack(SEQUENCES)
    with torch.no_grad():
        by_sequence = hidden_states(packed, batch)
        by_mask = hidden_states(dense, batch)  # transformers' block-diagonal mask
        alone = torch.cat([hidden_states(dense, pack([s])) for s in SEQUENCES], dim=1)
    torch.testing.assert_close(by_sequence, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(by_sequence, by_mask, atol=1e-5, rtol=0)


def test_gradients_match_the_dense_mask_path(models):
    dense, packed = models
    batch = pack(SEQUENCES)
    weights = torch.randn(batch.input_ids.shape[1], dense.config.hidden_size, generator=torch.Generator().manual_seed(0))
    grads = []
    for model in (dense, packed):
        model.zero_grad()
        (hidden_states(model, batch) * weights).sum().backward()
        grads.append(model.model.layers[0].self_attn.q_proj.weight.grad.clone())
    torch.testing.assert_close(grads[1], grads[0], atol=1e-5, rtol=1e-4)


def test_a_direct_trunk_call_without_boundaries_still_stays_inside_each_sequence(models):
    dense, packed = models
    batch = pack(SEQUENCES)
    with torch.no_grad():
        direct = packed.model(input_ids=batch.input_ids, position_ids=batch.position_ids,
                              use_cache=False).last_hidden_state
        reference = hidden_states(dense, batch)
    torch.testing.assert_close(direct, reference, atol=1e-5, rtol=0)


def test_packed_rows_never_build_a_dense_mask(models, monkeypatch):
    import transformers.masking_utils as masking

    dense, packed = models
    built = []
    real_sdpa_mask = masking.sdpa_mask

    def counting(*args, **kwargs):
        built.append(kwargs.get("q_length"))
        return real_sdpa_mask(*args, **kwargs)

    monkeypatch.setattr(masking, "sdpa_mask", counting)
    batch = pack(SEQUENCES)
    with torch.no_grad():
        by_sequence = hidden_states(packed, batch)
        padded = hidden_states(packed, pad(SEQUENCES, pad_id=2))
    assert len(built) == 1  # only the padded batch asked for a mask
    assert padded.shape[0] == len(SEQUENCES)
    with torch.no_grad():
        torch.testing.assert_close(by_sequence, hidden_states(dense, batch), atol=1e-5, rtol=0)


def test_padded_batches_and_generation_are_unchanged(models):
    dense, packed = models
    batch = pad(SEQUENCES, pad_id=2)
    with torch.no_grad():
        torch.testing.assert_close(hidden_states(packed, batch), hidden_states(dense, batch), atol=1e-5, rtol=0)
    prompts = torch.tensor([[2, 2, 1, 17, 230], [1, 400, 401, 402, 403]])  # one left-padded row
    mask = (torch.arange(5) >= torch.tensor([[2], [0]])).long()
    outputs = [
        model.generate(input_ids=prompts, attention_mask=mask, max_new_tokens=6, do_sample=False, pad_token_id=2,
                       eos_token_id=None)
        for model in (dense, packed)
    ]
    assert torch.equal(outputs[0], outputs[1])


def test_families_with_other_attention_keep_their_own():
    from transformers import LlamaConfig, MistralConfig

    assert supports_packed_attention(LlamaConfig())
    assert not supports_packed_attention(MistralConfig(sliding_window=4096))
    assert supports_packed_attention(MistralConfig(sliding_window=None))
    assert not supports_packed_attention(LlamaConfig(attention_dropout=0.1))

    class Gemma2Like:
        model_type = "gemma2"

    assert not supports_packed_attention(Gemma2Like())
