"""Packed attention on CUDA (flash varlen, bf16): same hidden states and gradients as the dense-mask path."""

from __future__ import annotations

import copy

import pytest
import torch

from alignkit.data.collate import pack
from alignkit.models.attention import use_packed_attention
from alignkit.models.forward import compile_decoder_layers, hidden_states
from alignkit.models.loader import load_model

pytestmark = pytest.mark.gpu


def _sequences() -> list[tuple[list[int], list[int]]]:
    generator = torch.Generator().manual_seed(0)
    lengths = [37, 5, 120, 64, 1, 200]
    return [(torch.randint(3, 40000, (n,), generator=generator).tolist(), [1] * n) for n in lengths]


def test_varlen_matches_the_dense_mask_in_bf16():
    dense = load_model("tiny-random", device="cuda", dtype="bf16", seed=0).model.eval()
    packed = copy.deepcopy(dense)
    assert use_packed_attention(packed)
    batch = pack(_sequences()).to(torch.device("cuda"))
    outputs = []
    for model in (dense, packed):
        model.zero_grad()
        hidden = hidden_states(model, batch)
        hidden.float().square().mean().backward()
        outputs.append((hidden.detach().float(), model.model.layers[0].self_attn.q_proj.weight.grad.float()))
    torch.testing.assert_close(outputs[1][0], outputs[0][0], atol=3e-2, rtol=3e-2)
    torch.testing.assert_close(outputs[1][1], outputs[0][1], atol=3e-2, rtol=5e-2)


def test_compiled_layers_give_the_same_hidden_states():
    model = load_model("tiny-random", device="cuda", dtype="bf16", seed=0).model.eval()
    use_packed_attention(model)
    batch = pack(_sequences()).to(torch.device("cuda"))
    with torch.no_grad():
        eager = hidden_states(model, batch).float()
        compile_decoder_layers(model)
        compiled = hidden_states(model, batch).float()
    torch.testing.assert_close(compiled, eager, atol=3e-2, rtol=3e-2)
