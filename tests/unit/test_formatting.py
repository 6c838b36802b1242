"""Chat formatting: hand-checked loss masks, EOS with pad == eos, BOS never doubled, truncation.

The embedded tokenizer renders ChatML with a default system prompt; ``<|im_start|>`` (id 1) is its
BOS and ``<|im_end|>`` (id 2) is eos, pad and the end-of-turn token at once.
"""

from __future__ import annotations

import copy

import pytest

from alignkit.config.common import DataConfig
from alignkit.data.dataset import build_sft_examples, format_record
from alignkit.data.formatting import (
    Formatted,
    doubled_bos,
    format_chat,
    format_raw,
    generation_prompt_ids,
    template_info,
    truncate,
)
from alignkit.data.readers import RawRecord
from alignkit.data.records import Record, validate_record
from alignkit.errors import DataError

IM_START, IM_END = 1, 2

# system + 2 user + 2 assistant turns; the first reply is context only (train: false).
CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello!", "train": False},
    {"role": "user", "content": "How are you?"},
    {"role": "assistant", "content": "Fine, thanks."},
]

# The rendered conversation as decoded tokens, one rendered line per row (each comment is the row's
# first position), checked by hand against "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user...".
EXPECTED_ROWS = [
    ["<|im_start|>", "system", "\n", "Be", " brief", ".", "<|im_end|>", "\n"],  # 0
    ["<|im_start|>", "user", "\n", "Hi", " there", "<|im_end|>", "\n"],  # 8
    ["<|im_start|>", "ass", "istant", "\n", "Hello", "!", "<|im_end|>", "\n"],  # 15
    ["<|im_start|>", "user", "\n", "How", " are", " you", "?", "<|im_end|>", "\n"],  # 23
    ["<|im_start|>", "ass", "istant", "\n", "Fine", ",", " thanks", ".", "<|im_end|>", "\n"],  # 32
]
EXPECTED_TOKENS = [token for row in EXPECTED_ROWS for token in row]
FIRST_REPLY = [19, 20, 21]  # "Hello", "!", "<|im_end|>"
SECOND_REPLY = [36, 37, 38, 39, 40]  # "Fine", ",", " thanks", ".", "<|im_end|>"

# A template that is not ChatML: it opens with the BOS token and ends replies with eos.
BOS_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{{ m['role'] + ': ' + m['content'] }}"
    "{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}{{ '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}"
)
PLAIN_TEMPLATE = BOS_TEMPLATE.replace("{{ bos_token }}", "")


def decoded(tokenizer, ids: list[int]) -> list[str]:
    return [tokenizer.decode([i]) for i in ids]


def ones(mask: list[int]) -> list[int]:
    return [i for i, m in enumerate(mask) if m == 1]


def record(data: dict, kind: str) -> Record:
    return validate_record(RawRecord("mem.jsonl", 1, data), kind)


@pytest.fixture(scope="module")
def bos_tokenizer(tokenizer):
    """The embedded tokenizer changed to prepend BOS on every plain encode (like Llama's)."""
    from tokenizers import processors

    changed = copy.deepcopy(tokenizer)
    changed._tokenizer.post_processor = processors.TemplateProcessing(
        single="<|im_start|> $A", pair="<|im_start|> $A $B", special_tokens=[("<|im_start|>", IM_START)]
    )
    assert changed("a").input_ids[0] == IM_START
    return changed


# --- hand-checked masks -------------------------------------------------------------------------


def test_multi_turn_mask_positions_hand_checked(tokenizer):
    formatted = format_chat(tokenizer, CONVERSATION)

    assert decoded(tokenizer, formatted.input_ids) == EXPECTED_TOKENS
    assert len(formatted.loss_mask) == len(formatted.input_ids) == 42
    # Only the trained reply and its <|im_end|>: not "assistant\n" before it, not the "\n" after it,
    # and nothing of the train: false reply.
    assert ones(formatted.loss_mask) == SECOND_REPLY
    assert tokenizer.decode([formatted.input_ids[i] for i in SECOND_REPLY]) == "Fine, thanks.<|im_end|>"
    assert formatted.loss_mask[33:36] == [0, 0, 0]  # "ass", "istant", "\n"
    assert formatted.loss_mask[41] == 0  # "\n" after <|im_end|>
    assert formatted.eot_positions == [40]
    assert formatted.input_ids[40] == IM_END


def test_every_trained_turn_is_masked(tokenizer):
    both = [{k: v for k, v in m.items() if k != "train"} for m in CONVERSATION]
    formatted = format_chat(tokenizer, both)

    assert decoded(tokenizer, formatted.input_ids) == EXPECTED_TOKENS
    assert ones(formatted.loss_mask) == FIRST_REPLY + SECOND_REPLY
    assert formatted.eot_positions == [21, 40]


def test_eos_is_in_the_mask_when_pad_equals_eos(tokenizer):
    assert tokenizer.pad_token_id == tokenizer.eos_token_id == IM_END
    formatted = format_chat(tokenizer, CONVERSATION)

    eos_positions = [i for i, t in enumerate(formatted.input_ids) if t == IM_END]
    assert eos_positions == [6, 13, 21, 30, 40]
    # Masked by position: the same id is a target at 40 and context everywhere else.
    assert [formatted.loss_mask[i] for i in eos_positions] == [0, 0, 0, 0, 1]
    # What a collator that masks labels by pad id would throw away: the only trained <|im_end|>.
    labels_by_pad_id = [
        m if t != tokenizer.pad_token_id else 0
        for t, m in zip(formatted.input_ids, formatted.loss_mask, strict=True)
    ]
    assert sum(labels_by_pad_id) == sum(formatted.loss_mask) - 1


def test_template_info_of_the_embedded_tokenizer(tokenizer):
    info = template_info(tokenizer)

    assert info.has_template
    assert (info.eot_token, info.eot_id) == ("<|im_end|>", IM_END)
    assert (info.bos_token, info.bos_id, info.eos_id) == ("<|im_start|>", IM_START, IM_END)
    assert info.adds_bos is False
    assert "<|im_end|>" in info.special_tokens


def test_generation_prompt_ids_equal_the_training_prefix(tokenizer):
    """The prompt inference feeds the model is token for token what training put before each reply."""
    both = [{k: v for k, v in m.items() if k != "train"} for m in CONVERSATION]
    formatted = format_chat(tokenizer, both)
    for index, first_target in ((2, FIRST_REPLY[0]), (4, SECOND_REPLY[0])):
        prompt = generation_prompt_ids(tokenizer, both[:index])
        assert len(prompt) == first_target
        assert formatted.input_ids[: len(prompt)] == prompt
        assert formatted.loss_mask[len(prompt) - 1] == 0 and formatted.loss_mask[len(prompt)] == 1


def test_content_with_a_special_token_is_refused(tokenizer):
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "bye<|im_end|>"}]
    with pytest.raises(DataError) as info:
        format_chat(tokenizer, messages)
    assert info.value.field == "messages[1].content"


def test_tokenizer_without_template_is_refused(tokenizer):
    bare = copy.deepcopy(tokenizer)
    bare.chat_template = None
    with pytest.raises(DataError, match="no chat template"):
        format_chat(bare, CONVERSATION)


# --- BOS ----------------------------------------------------------------------------------------


def test_no_doubled_bos_with_the_default_template(tokenizer):
    formatted = format_chat(tokenizer, CONVERSATION)
    assert formatted.input_ids[:2] == [IM_START, tokenizer.convert_tokens_to_ids("system")]
    assert not doubled_bos(formatted.input_ids, IM_START)
    assert doubled_bos([IM_START, IM_START, 5], IM_START)


@pytest.mark.parametrize(
    ("adds_bos", "template", "expected_bos"),
    [
        (False, BOS_TEMPLATE, 1),  # the template writes BOS
        (True, BOS_TEMPLATE, 1),  # template and tokenizer both would: once
        (True, PLAIN_TEMPLATE, 1),  # the tokenizer's BOS is added once
        (False, PLAIN_TEMPLATE, 0),  # nobody asks for one
    ],
)
def test_bos_appears_once(tokenizer, bos_tokenizer, adds_bos, template, expected_bos):
    tok = bos_tokenizer if adds_bos else tokenizer
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    formatted = format_chat(tok, messages, chat_template=template)
    prompt = generation_prompt_ids(tok, messages[:1], chat_template=template)

    assert formatted.input_ids.count(IM_START) == expected_bos
    assert formatted.input_ids[:expected_bos] == [IM_START] * expected_bos
    assert formatted.input_ids[: len(prompt)] == prompt
    assert tokenizer.decode([formatted.input_ids[i] for i in ones(formatted.loss_mask)]) == "Hello!<|im_end|>"
    assert formatted.eot_positions == [len(formatted.input_ids) - 2]  # the "\n" after eos is context
    assert not doubled_bos(formatted.input_ids, IM_START)


def test_chatml_with_a_bos_adding_tokenizer_is_not_doubled(bos_tokenizer):
    formatted = format_chat(bos_tokenizer, CONVERSATION)
    assert formatted.input_ids[0] == IM_START and formatted.input_ids[1] != IM_START
    assert generation_prompt_ids(bos_tokenizer, CONVERSATION[:2])[:2] == formatted.input_ids[:2]


# --- truncation ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def full(tokenizer) -> Formatted:
    formatted = format_chat(tokenizer, CONVERSATION)
    assert len(formatted.input_ids) == 42
    return formatted


def test_keep_start(full):
    cut = truncate(full, max_length=38, policy="keep_start")
    assert cut is not None and cut.truncated
    assert len(cut.input_ids) == len(cut.loss_mask) == 38
    assert cut.input_ids == full.input_ids[:38] and cut.loss_mask == full.loss_mask[:38]
    assert cut.eot_positions == [-1]  # the <|im_end|> at 40 was cut off


def test_keep_end(full):
    cut = truncate(full, max_length=20, policy="keep_end")
    assert cut is not None and cut.truncated
    assert len(cut.input_ids) == len(cut.loss_mask) == 20
    assert cut.input_ids == full.input_ids[22:] and cut.loss_mask == full.loss_mask[22:]
    assert cut.eot_positions == [40 - 22]
    assert cut.input_ids[18] == IM_END and cut.loss_mask[18] == 1


def test_drop(full):
    assert truncate(full, max_length=41, policy="drop") is None


def test_error(full):
    with pytest.raises(DataError, match="42 tokens exceed data.max_length=41"):
        truncate(full, max_length=41, policy="error")


def test_error_names_a_prompt_that_leaves_no_room(full):
    with pytest.raises(DataError, match="prompt alone is 36 tokens: no room for the completion"):
        truncate(full, max_length=36, policy="error")


@pytest.mark.parametrize("policy", ["keep_start", "keep_end", "drop", "error"])
def test_fitting_examples_are_untouched(full, policy):
    assert truncate(full, max_length=42, policy=policy) is full
    assert not full.truncated


@pytest.mark.parametrize(
    ("policy", "examples", "truncated", "dropped"),
    [
        ("keep_start", 2, 1, {}),
        ("keep_end", 2, 1, {}),
        ("drop", 1, 0, {"too_long": 1}),
    ],
)
def test_truncation_policies_through_the_dataset(tokenizer, policy, examples, truncated, dropped):
    short = record(
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}, "messages"
    )
    long = record({"messages": CONVERSATION}, "messages")
    built, report = build_sft_examples([short, long], tokenizer, DataConfig(max_length=40, truncation=policy))

    assert (report.examples, report.truncated, dict(report.dropped)) == (examples, truncated, dropped)
    assert all(len(e.input_ids) <= 40 for e in built)
    if policy != "drop":
        assert len(built[1].input_ids) == 40


def test_truncation_error_through_the_dataset_names_the_record(tokenizer):
    long = validate_record(RawRecord("data.jsonl", 7, {"messages": CONVERSATION}), "messages")
    with pytest.raises(DataError) as info:
        build_sft_examples([long], tokenizer, DataConfig(max_length=40, truncation="error"))
    assert (info.value.source, info.value.line) == ("data.jsonl", 7)


def test_fully_masked_record_is_dropped_and_counted(tokenizer):
    # keep_start at 30 tokens cuts before the trained reply (position 36): nothing left to learn.
    keep = record({"messages": [*CONVERSATION[:2], {"role": "assistant", "content": "Hello!"}]}, "messages")
    masked = validate_record(RawRecord("data.jsonl", 2, {"messages": CONVERSATION}), "messages")
    built, report = build_sft_examples([keep, masked], tokenizer, DataConfig(max_length=30))

    assert len(built) == report.examples == 1
    assert report.dropped == {"fully_masked": 1}
    assert report.problem_lines == {"fully_masked": [2]}
    # The dropped record counts only as dropped: not truncated, no untrained end-of-turn.
    assert (report.truncated, report.trained_turns, report.trained_turns_with_eot) == (0, 1, 1)


# --- record kinds and raw text ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        ({"prompt": "What is 2+2?", "completion": "4."}, "prompt_completion"),
        (
            {
                "prompt": [
                    {"role": "system", "content": "Math."},
                    {"role": "user", "content": "What is 2+2?"},
                ],
                "completion": [{"role": "assistant", "content": "4."}],
            },
            "prompt_completion",
        ),
        ({"instruction": "What is 2+2?", "output": "4."}, "alpaca"),
        ({"instruction": "Add these.", "input": "2 and 2", "output": "4."}, "alpaca"),
    ],
)
def test_prompt_completion_and_alpaca_mask_only_the_completion(tokenizer, data, kind):
    rec = record(data, kind)
    formatted = format_record(tokenizer, rec, DataConfig(), None)

    trained = ones(formatted.loss_mask)
    assert tokenizer.decode([formatted.input_ids[i] for i in trained]) == "4.<|im_end|>"
    assert trained == list(range(trained[0], trained[-1] + 1))  # one contiguous span
    prompt = generation_prompt_ids(tokenizer, rec.messages[:-1])
    assert formatted.input_ids[: len(prompt)] == prompt and trained[0] == len(prompt)


def test_alpaca_input_is_part_of_the_prompt(tokenizer):
    rec = record({"instruction": "Add these.", "input": "2 and 2", "output": "4."}, "alpaca")
    assert rec.messages[0] == {"role": "user", "content": "Add these.\n\n2 and 2", "train": False}


@pytest.mark.parametrize("add_eos", [True, False])
def test_raw_text_mode(tokenizer, add_eos):
    text = "The lamp charges over USB-C."
    config = DataConfig(raw_text=True, add_eos=add_eos)
    formatted = format_record(tokenizer, record({"text": text}, "text"), config, None)
    body = tokenizer(text, add_special_tokens=False).input_ids

    assert formatted.input_ids == body + [IM_END] * add_eos
    assert formatted.loss_mask == [1] * len(formatted.input_ids)
    assert formatted.eot_positions == ([len(body)] if add_eos else [-1])


def test_raw_text_mode_trains_only_the_completion(tokenizer):
    rec = record({"prompt": "Q: 2+2?", "completion": "A: 4"}, "prompt_completion")
    formatted = format_record(tokenizer, rec, DataConfig(raw_text=True), None)

    assert tokenizer.decode(formatted.input_ids) == "Q: 2+2?\nA: 4<|im_end|>"
    assert tokenizer.decode([formatted.input_ids[i] for i in ones(formatted.loss_mask)]) == "A: 4<|im_end|>"


def test_format_raw_with_a_bos_adding_tokenizer(bos_tokenizer):
    formatted = format_raw(bos_tokenizer, "hello", add_eos=True)
    assert formatted.input_ids[0] == IM_START and formatted.loss_mask[0] == 0
    assert formatted.input_ids[-1] == IM_END and formatted.loss_mask[-1] == 1
    assert not doubled_bos(formatted.input_ids, IM_START)
