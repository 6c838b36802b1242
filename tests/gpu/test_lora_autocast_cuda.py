"""LoRA over a bf16 base under the training autocast: feeding the adapters bf16 inputs (no fp32 copy of
each activation) gives the same loss and adapter gradients as PEFT's own fp32 input casting."""

from __future__ import annotations

import pytest
import torch

from alignkit.config.training import LoraSection
from alignkit.models.adapters import apply_lora
from alignkit.models.loader import load_model
from alignkit.training.step import autocast

pytestmark = pytest.mark.gpu


def test_adapter_inputs_in_bf16_match_peft_casting():
    model = load_model("tiny-random", device="cuda", dtype="bf16", seed=0).model
    torch.manual_seed(0)
    model = apply_lora(model, LoraSection(r=8, alpha=16))
    for name, param in model.named_parameters():
        if "lora_B" in name:  # non-zero B, so the adapter path contributes to the loss
            torch.nn.init.normal_(param, std=0.02)
    ids = torch.randint(3, 40000, (2, 64), device="cuda")

    def loss_and_grads(ours: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad(set_to_none=True)
        context = autocast(torch.device("cuda"), model) if ours else torch.autocast("cuda", dtype=torch.bfloat16)
        with context:
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        grads = [p.grad.float().clone() for n, p in model.named_parameters() if p.requires_grad]
        return loss.detach().float(), grads

    cast_loss, cast_grads = loss_and_grads(False)
    bf16_loss, bf16_grads = loss_and_grads(True)
    torch.testing.assert_close(bf16_loss, cast_loss, atol=1e-2, rtol=1e-2)
    for ours, theirs in zip(bf16_grads, cast_grads, strict=True):
        torch.testing.assert_close(ours, theirs, atol=2e-2, rtol=5e-2)
    # Leaving the context restores PEFT's casting.
    assert all(getattr(m, "cast_input_dtype_enabled", True) for m in model.modules())
