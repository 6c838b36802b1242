"""Local batched generation: replies come back in prompt order whatever the batching, and stop flags."""

from __future__ import annotations

import torch

from alignkit.data.formatting import stop_token_ids
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


def test_stop_set_is_tokenizer_eos_generation_config_eos_and_template_end_of_turn(tiny_model):
    # A template whose turns end with <|endoftext|> (id 0), a generation config whose EOS is id 7:
    # the stop set still holds the tokenizer's EOS (<|im_end|>, id 2).
    template = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|endoftext|>\n{% endfor %}"
                "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    model = tiny_model.model
    model.generation_config.eos_token_id = 7
    assert stop_token_ids(tiny_model.tokenizer, model.generation_config, template) == [0, 2, 7]
    assert LocalGenerator(model, tiny_model.tokenizer, chat_template=template).stop_ids == [0, 2, 7]


def test_token_callback_sees_each_rows_tokens_as_they_come(tiny_model):
    torch.set_num_threads(1)
    generator = LocalGenerator(tiny_model.model, tiny_model.tokenizer, batch_size=8)
    params = GenerationParams(max_new_tokens=6, num_samples=2, temperature=1.0, seed=3)
    plain = generator.generate_ids(PROMPTS, params)
    # Make a token that first appears mid-reply a stop token: that row stops there, others run on.
    stopper, where = next((ids[i], (p, i)) for p, out in enumerate(plain) for ids in [out[0].token_ids]
                          for i in range(1, len(ids) - 1) if ids[i] not in ids[:i])
    generator.stop_ids = [stopper]
    streamed: dict[tuple[int, int], list[int]] = {}
    result = generator.generate_ids(PROMPTS, params,
                                    on_token=lambda p, s, t: streamed.setdefault((p, s), []).append(t))
    stopped_row = result[where[0]][0]
    assert stopped_row.token_ids == plain[where[0]][0].token_ids[: where[1] + 1] and stopped_row.stopped
    assert any(not g.stopped and len(g.token_ids) == 6 for out in result for g in out)
    for prompt_index, samples in enumerate(result):
        for sample_index, generation in enumerate(samples):
            assert streamed[(prompt_index, sample_index)] == generation.token_ids


def test_a_cancelled_prompt_stops_alone(tiny_model):
    torch.set_num_threads(1)
    generator = LocalGenerator(tiny_model.model, tiny_model.tokenizer, batch_size=8)
    params = GenerationParams(max_new_tokens=8)
    plain = generator.generate_ids(PROMPTS, params)
    seen = {index: 0 for index in range(len(PROMPTS))}

    def count(prompt_index: int, sample_index: int, token: int) -> None:
        seen[prompt_index] += 1

    result = generator.generate_ids(PROMPTS, params, on_token=count, cancelled=lambda p: p == 1 and seen[1] >= 2)
    assert result[1][0].finish_reason == "cancelled" and not result[1][0].stopped
    # Asked after each step's token is appended: the third token is the last one kept (and streamed).
    assert result[1][0].token_ids == plain[1][0].token_ids[:3] and seen[1] == 3
    assert [result[i][0].token_ids for i in (0, 2, 3, 4)] == [plain[i][0].token_ids for i in (0, 2, 3, 4)]


def test_logprobs_are_the_models_log_softmax_at_each_generated_token(tiny_model):
    torch.set_num_threads(1)
    generator = LocalGenerator(tiny_model.model, tiny_model.tokenizer, batch_size=8)
    result = generator.generate_ids(PROMPTS[:2], GenerationParams(max_new_tokens=4, logprobs=3))
    for prompt, samples in zip(PROMPTS[:2], result, strict=True):
        generation = samples[0]
        assert generation.logprobs is not None and len(generation.logprobs) == len(generation.token_ids) == 4
        # Teacher-forced forward over prompt + reply: the log-softmax at the position before each token.
        ids = torch.tensor([prompt + generation.token_ids])
        with torch.no_grad():
            logps = torch.log_softmax(tiny_model.model(ids).logits[0].float(), dim=-1)
        for step, entry in enumerate(generation.logprobs):
            expected = logps[len(prompt) - 1 + step]
            assert entry.token_id == generation.token_ids[step]
            assert abs(entry.logprob - float(expected[entry.token_id])) < 1e-4
            # Greedy: the chosen token is the most likely one; alternatives come best first.
            assert entry.top[0][0] == entry.token_id and len(entry.top) == 3
            assert [lp for _, lp in entry.top] == sorted((lp for _, lp in entry.top), reverse=True)
            assert abs(entry.top[1][1] - float(expected.topk(2).values[1])) < 1e-4


def _recording_generate(model):
    """Wraps ``model.generate`` to record the rows of each call."""
    rows: list[int] = []
    original = model.generate

    def generate(*args, **kwargs):
        rows.append(int(kwargs["input_ids"].shape[0]))
        return original(*args, **kwargs)

    model.generate = generate
    return rows


def test_rows_that_stopped_leave_the_batch_and_greedy_replies_are_unchanged(tiny_model):
    torch.set_num_threads(1)
    params = GenerationParams(max_new_tokens=12)
    whole = LocalGenerator(tiny_model.model, tiny_model.tokenizer, batch_size=8, segment_tokens=0)
    reference = whole.generate_ids(PROMPTS, params)
    # A token that appears in some greedy replies but not others: those rows stop there.
    first_tokens = [out[0].token_ids for out in reference]
    stopper = next(ids[2] for ids in first_tokens if sum(ids[2] in other for other in first_tokens) < len(PROMPTS))
    whole.stop_ids = [stopper]
    expected = whole.generate_ids(PROMPTS, params)
    assert any(g.stopped for out in expected for g in out) and not all(g.stopped for out in expected for g in out)

    segmented = LocalGenerator(tiny_model.model, tiny_model.tokenizer, batch_size=8, segment_tokens=3)
    segmented.stop_ids = [stopper]
    rows = _recording_generate(tiny_model.model)
    got = segmented.generate_ids(PROMPTS, params)
    del tiny_model.model.generate
    as_tuples = [[(g.token_ids, g.text, g.stopped, g.finish_reason) for g in out] for out in got]
    assert as_tuples == [[(g.token_ids, g.text, g.stopped, g.finish_reason) for g in out] for out in expected]
    # The first segment runs every row; later ones only the rows still going.
    stopped_early = sum(g.stopped for out in expected for g in out)
    assert rows[0] == len(PROMPTS) and min(rows) <= len(PROMPTS) - stopped_early
    assert sum(rows) < len(PROMPTS) * len(rows)


def test_segments_honour_stop_strings_and_the_token_limit(tiny_model):
    torch.set_num_threads(1)
    params = GenerationParams(max_new_tokens=10)
    whole = LocalGenerator(tiny_model.model, tiny_model.tokenizer, batch_size=8, segment_tokens=0)
    texts = [out[0].text for out in whole.generate_ids(PROMPTS, params)]
    # A stop string of three characters from the middle of the first reply.
    stop = texts[0][len(texts[0]) // 2 : len(texts[0]) // 2 + 3]
    with_stop = GenerationParams(max_new_tokens=10, stop=(stop,))
    expected = whole.generate_ids(PROMPTS, with_stop)
    got = LocalGenerator(tiny_model.model, tiny_model.tokenizer, batch_size=8,
                         segment_tokens=2).generate_ids(PROMPTS, with_stop)
    assert [out[0].text for out in got] == [out[0].text for out in expected]
    assert [out[0].stopped for out in got] == [out[0].stopped for out in expected]
    assert got[0][0].stopped and stop not in got[0][0].text
    assert all(len(out[0].token_ids) <= 10 for out in got)


# A 20-token system prompt, then each row's own question.
SHARED = [1, *range(500, 519)]
SHARED_PROMPTS = [SHARED + [17, 230, 5], SHARED + [9], SHARED + [400, 401, 402, 403], SHARED + [33, 34]]


def _prefix_calls(monkeypatch) -> list[tuple[int, int]]:
    """Records (prefix length, rows) of each shared-prefix forward pass."""
    calls: list[tuple[int, int]] = []
    original = LocalGenerator._prefix_cache

    def record(self, prefix_ids, rows):
        calls.append((int(prefix_ids.shape[1]), rows))
        return original(self, prefix_ids, rows)

    monkeypatch.setattr(LocalGenerator, "_prefix_cache", record)
    return calls


def test_a_prefix_shared_by_the_batch_is_computed_once_with_the_same_replies(tiny_model, monkeypatch):
    torch.set_num_threads(1)
    generator = LocalGenerator(tiny_model.model, tiny_model.tokenizer, batch_size=8)
    greedy = GenerationParams(max_new_tokens=6, logprobs=2)
    sampled = GenerationParams(max_new_tokens=6, temperature=1.0, num_samples=2, seed=5)
    unshared = LocalGenerator(tiny_model.model, tiny_model.tokenizer, batch_size=8, min_shared_prefix=0)
    expected = [unshared.generate_ids(SHARED_PROMPTS, p) for p in (greedy, sampled)]
    calls = _prefix_calls(monkeypatch)
    got = [generator.generate_ids(SHARED_PROMPTS, p) for p in (greedy, sampled)]
    # One forward pass over the 20 shared tokens per batch: 4 rows greedy, 4 prompts x 2 samples sampled.
    assert calls == [(len(SHARED), 4), (len(SHARED), 8)]
    for got_run, expected_run in zip(got, expected, strict=True):
        assert [[g.token_ids for g in out] for out in got_run] == [[g.token_ids for g in out] for out in expected_run]
    for got_row, expected_row in zip(got[0], expected[0], strict=True):
        assert got_row[0].logprobs is not None and expected_row[0].logprobs is not None
        for a, b in zip(got_row[0].logprobs, expected_row[0].logprobs, strict=True):
            assert abs(a.logprob - b.logprob) < 1e-4


def test_streaming_and_cancelling_work_on_a_shared_prefix(tiny_model, monkeypatch):
    torch.set_num_threads(1)
    generator = LocalGenerator(tiny_model.model, tiny_model.tokenizer, batch_size=8)
    params = GenerationParams(max_new_tokens=8)
    unshared = LocalGenerator(tiny_model.model, tiny_model.tokenizer, batch_size=8, min_shared_prefix=0)
    plain = unshared.generate_ids(SHARED_PROMPTS, params)
    calls = _prefix_calls(monkeypatch)
    streamed: dict[int, list[int]] = {}

    def on_token(prompt_index: int, sample_index: int, token: int) -> None:
        streamed.setdefault(prompt_index, []).append(token)

    result = generator.generate_ids(SHARED_PROMPTS, params, on_token=on_token,
                                    cancelled=lambda p: p == 2 and len(streamed.get(2, [])) >= 3)
    assert calls == [(len(SHARED), 4)]
    assert result[2][0].finish_reason == "cancelled" and result[2][0].token_ids == plain[2][0].token_ids[:4]
    assert [result[i][0].token_ids for i in (0, 1, 3)] == [plain[i][0].token_ids for i in (0, 1, 3)]
    assert all(streamed[i] == result[i][0].token_ids for i in range(len(SHARED_PROMPTS)))


def test_no_prefix_pass_for_short_prefixes_one_row_or_flash_attention(tiny_model, monkeypatch):
    generator = LocalGenerator(tiny_model.model, tiny_model.tokenizer, batch_size=8)
    # Every prompt keeps one token of its own: a prompt that is the whole prefix caps it.
    assert generator._shared_prefix_length(SHARED_PROMPTS) == len(SHARED)
    assert generator._shared_prefix_length([SHARED, SHARED + [4]]) == len(SHARED) - 1
    assert generator._shared_prefix_length(PROMPTS) == 0  # they share one token
    assert generator._shared_prefix_length(SHARED_PROMPTS[:1]) == 0
    monkeypatch.setattr(tiny_model.model.config, "_attn_implementation", "flash_attention_2")
    assert generator._shared_prefix_length(SHARED_PROMPTS) == 0
