"""What an exported GGUF must compute, derived without the exporter: the merged model with its weights
rounded the way the file stores them.

transformers dequantises a GGUF back to fp32, so a correct file (names, Q/K permutation, tied head,
hyper-parameters) gives *exactly* the logits of the merged model whose matrices were rounded to f16
(``numpy.float16``) or through Q8_0 (gguf's reference quantiser), norms left in fp32 as llama.cpp keeps
them. Any layout mistake shows as a large difference; rounding alone shows as none.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch


def rounded_copy(model: Any, quant: str) -> Any:
    """A deep copy of ``model`` whose 2-D weights went through ``quant`` (f16 or q8_0) and back."""
    import gguf

    rounded = copy.deepcopy(model)
    with torch.no_grad():
        for parameter in rounded.parameters():
            if parameter.ndim != 2:
                continue
            weight = parameter.detach().cpu().numpy()
            if quant == "f16":
                back = weight.astype(np.float16).astype(np.float32)
            else:
                kind = gguf.GGMLQuantizationType.Q8_0
                back = gguf.quants.dequantize(gguf.quants.quantize(weight, kind), kind)
            parameter.copy_(torch.from_numpy(np.ascontiguousarray(back, dtype=np.float32)))
    return rounded


def logits(model: Any, token_ids: list[int]) -> torch.Tensor:
    """(seq, vocab) fp32 logits of one sequence."""
    with torch.no_grad():
        return model(torch.tensor([token_ids])).logits[0].float()


def greedy(model: Any, token_ids: list[int], max_new_tokens: int, stop_ids: list[int]) -> list[int]:
    """transformers' greedy decoding of one prompt; the reply's token ids (stop token included)."""
    with torch.no_grad():
        output = model.generate(torch.tensor([token_ids]), attention_mask=torch.ones(1, len(token_ids), dtype=torch.long),
                                max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=stop_ids,
                                pad_token_id=stop_ids[0])
    return [int(t) for t in output[0, len(token_ids):]]
