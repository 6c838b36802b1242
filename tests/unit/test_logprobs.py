"""The one per-token log-prob function (models.logprobs.token_forward over losses.sft.token_logps)
against a full forward done by hand: packed vs padded, chunked vs unchunked, temperature, entropy."""

from __future__ import annotations

import pytest
import torch

from alignkit.data.collate import pack, pad
from alignkit.models.logprobs import sequence_logps, token_forward

pytestmark = pytest.mark.usefixtures("one_thread")

# (input_ids, loss_mask): the trained tokens are the "reply" at the end of each sequence.
SEQUENCES = [
    ([1, 5, 9, 13, 2, 40, 41, 42, 2], [0, 0, 0, 0, 0, 1, 1, 1, 1]),
    ([1, 7, 2, 50, 2], [0, 0, 0, 1, 1]),
    ([1, 8, 8, 8, 8, 8, 2, 60, 61, 62, 63, 2], [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]),
]


def by_hand(model, temperature: float = 1.0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Each sequence alone through ``model(...)``: log softmax(logits / T) at the next token of every
    trained position, and the entropy -sum p log p of that distribution."""
    logps, entropies = [], []
    with torch.no_grad():
        for ids, mask in SEQUENCES:
            logits = model(input_ids=torch.tensor([ids])).logits[0].float() / temperature
            log_p = torch.log_softmax(logits, dim=-1)
            positions = [i - 1 for i, m in enumerate(mask) if m]  # position i-1 predicts token i
            targets = [ids[i] for i, m in enumerate(mask) if m]
            logps.append(log_p[positions, targets])
            entropies.append(-(log_p.exp() * log_p).sum(-1)[positions])
    return logps, entropies


def per_sequence(values: torch.Tensor, owners: torch.Tensor) -> list[torch.Tensor]:
    return [values[owners == i] for i in range(len(SEQUENCES))]


@pytest.mark.parametrize("packed", [True, False], ids=["packed", "padded"])
@pytest.mark.parametrize("chunk_size", [1, 4, 1024])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_token_logps_equal_separate_full_forwards(tiny_base, packed, chunk_size, temperature) -> None:
    model = tiny_base.model.eval()
    batch = pack(SEQUENCES) if packed else pad(SEQUENCES, pad_id=2)
    with torch.no_grad():
        out = token_forward(model, batch, temperature=temperature, chunk_size=chunk_size)
    expected_logps, expected_entropy = by_hand(model, temperature)
    assert out.lengths.tolist() == [4, 2, 5]
    for got, want in zip(per_sequence(out.logps, out.owners), expected_logps, strict=True):
        torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-5)
    for got, want in zip(per_sequence(out.entropy_or_fail(), out.owners), expected_entropy, strict=True):
        torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-5)


def test_sequence_logps_are_the_sums_and_without_entropy_nothing_is_computed(tiny_base) -> None:
    model = tiny_base.model.eval()
    with torch.no_grad():
        sums, lengths = sequence_logps(model, pack(SEQUENCES), chunk_size=3)
        out = token_forward(model, pack(SEQUENCES), with_entropy=False)
    expected, _ = by_hand(model)
    torch.testing.assert_close(sums, torch.stack([e.sum() for e in expected]), atol=1e-4, rtol=1e-5)
    assert lengths.tolist() == [4, 2, 5] and out.entropy is None
    with pytest.raises(ValueError, match="with_entropy=False"):
        out.entropy_or_fail()


def test_chunked_gradient_equals_unchunked(tiny_model) -> None:
    """Chunks recompute their logits in backward (checkpointing): the gradient must not change."""
    model = tiny_model.model.train()
    grads = []
    for chunk_size in (2, 1024):
        model.zero_grad()
        token_forward(model, pack(SEQUENCES), chunk_size=chunk_size).logps.sum().backward()
        grads.append(model.get_output_embeddings().weight.grad.clone())
    # Equal up to float32 summation order (chunks add their gradients one after another).
    torch.testing.assert_close(grads[0], grads[1], atol=1e-4, rtol=1e-4)
    assert grads[0].abs().sum() > 0
