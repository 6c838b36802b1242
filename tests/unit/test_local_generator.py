"""Local batched generation: replies come back in prompt order whatever the batching, and stop flags."""

from __future__ import annotations

import torch

from alignkit.generation.local import LocalGenerator
from alignkit.generation.types import GenerationParams

PROMPTS = [
    [1, 17, 230, 5, 88, 91, 92, 93, 94],
    [1, 9],
    [1, 400, 401, 402, 403, 404],
    [1, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43],
    [1, 77, 78],
]


def test_replies_are_returned_per_prompt_in_order(tiny_model):
    torch.set_num_threads(1)
    generator = LocalGenerator(tiny_model.model, tiny_model.tokenizer, batch_size=2)
    params = GenerationParams(max_new_tokens=5)
    together = generator.generate_ids(PROMPTS, params)
    alone = [LocalGenerator(tiny_model.model, tiny_model.tokenizer, batch_size=1).generate_ids([p], params)[0]
             for p in PROMPTS]
    assert [[g.token_ids for g in out] for out in together] == [[g.token_ids for g in out] for out in alone]


def test_samples_per_prompt_are_reproducible_and_counted(tiny_model):
    generator = LocalGenerator(tiny_model.model, tiny_model.tokenizer, batch_size=4)
    params = GenerationParams(max_new_tokens=4, temperature=1.0, num_samples=3, seed=7)
    first = generator.generate_ids(PROMPTS, params)
    second = generator.generate_ids(PROMPTS, params)
    assert [len(out) for out in first] == [3] * len(PROMPTS)
    assert [[g.token_ids for g in out] for out in first] == [[g.token_ids for g in out] for out in second]
    # A random 49k-token model never emits end-of-turn in 4 tokens: every reply hit the limit.
    assert all(not g.stopped and g.finish_reason == "length" for out in first for g in out)
