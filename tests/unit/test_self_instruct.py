"""Self-Instruct: seed file, prompt assembly, parsing, filtering, and a scripted end-to-end run."""

from __future__ import annotations

import itertools
import random
import re
from pathlib import Path

import pytest

from alignkit.errors import DataError
from alignkit.generation.types import Chat, Generation, GenerationParams
from alignkit.synth.rouge import RougeLFilter, rouge_l_fmeasure
from alignkit.synth.self_instruct import (
    CLASSIFICATION_PROMPT_HEADER,
    DROP_BAD_START,
    DROP_BLOCKED_KEYWORD,
    DROP_DUPLICATE_INSTANCE,
    DROP_NEAR_DUPLICATE,
    DROP_TOO_LONG,
    DROP_TOO_SHORT,
    DROP_TRUNCATED_INSTRUCTION,
    INPUT_FIRST_PROMPT_HEADER,
    INSTRUCTION_PROMPT_HEADER,
    OUTPUT_FIRST_PROMPT_HEADER,
    Instance,
    SeedTask,
    build_instance_prompt,
    build_instruction_prompt,
    filter_instruction,
    load_seed_tasks,
    parse_instances,
    parse_instructions,
    parse_yes_no,
    run_self_instruct,
    sample_prompt_instructions,
)

LISTED_RE = re.compile(r"^(\d+)\. (.*)$", re.MULTILINE)


def listed_instructions(prompt: str) -> list[tuple[int, str]]:
    return [(int(number), text) for number, text in LISTED_RE.findall(prompt)]


# --- seed tasks ------------------------------------------------------------------------------------


def test_seed_file_is_large_diverse_and_clean() -> None:
    seeds = load_seed_tasks()
    assert len(seeds) >= 100
    num_classification = sum(task.is_classification for task in seeds)
    assert 0.2 * len(seeds) < num_classification < 0.5 * len(seeds)
    assert sum(bool(task.input) for task in seeds) > 30  # both with and without input
    for task in seeds:
        # Seeds obey the rules generated instructions are held to (bar the pool check).
        assert filter_instruction(task.instruction) is None, task.instruction
        assert task.output.strip()
    worst = max(rouge_l_fmeasure(a.instruction, b.instruction) for a, b in itertools.combinations(seeds, 2))
    assert worst < 0.7


def test_load_seed_tasks_names_file_line_field(tmp_path: Path) -> None:
    bad = tmp_path / "seeds.jsonl"
    bad.write_text(
        '{"instruction": "Do a thing well.", "input": "", "output": "ok", "is_classification": false}\n'
        '{"instruction": "Do another thing.", "input": "", "output": "ok", "is_classification": "no"}\n'
    )
    with pytest.raises(DataError) as error:
        load_seed_tasks(bad)
    assert error.value.one_line() == f"{bad}:2: is_classification: expected true or false"


# --- prompt assembly ---------------------------------------------------------------------------------


def test_prompt_sample_is_six_seed_plus_two_generated() -> None:
    seeds = [f"seed task number {i}" for i in range(20)]
    generated = [f"generated task number {i}" for i in range(5)]
    seed_sample, generated_sample = sample_prompt_instructions(random.Random(0), seeds, generated)
    assert len(seed_sample) == 6 and set(seed_sample) <= set(seeds)
    assert len(generated_sample) == 2 and set(generated_sample) <= set(generated)

    prompt = build_instruction_prompt(seed_sample, generated_sample)
    assert prompt.startswith(INSTRUCTION_PROMPT_HEADER)
    listed = listed_instructions(prompt)
    assert [number for number, _ in listed] == list(range(1, 9))
    assert [text for _, text in listed] == seed_sample + generated_sample  # seeds first, then generated
    assert "numbered 9 to 16" in prompt


def test_prompt_sample_is_all_seed_with_fewer_than_two_generated() -> None:
    seeds = [f"seed task number {i}" for i in range(20)]
    for generated in ([], ["only one generated task"]):
        seed_sample, generated_sample = sample_prompt_instructions(random.Random(1), seeds, generated)
        assert len(seed_sample) == 8 and len(set(seed_sample)) == 8 and set(seed_sample) <= set(seeds)
        assert generated_sample == []


def test_parse_instructions_numbered_list() -> None:
    reply = (
        "Here are some new tasks:\n\n"
        "9. Write a sonnet about autumn leaves.\n"
        "10) Explain the rules of chess\n   to a beginner.\n"
        "**11.** Rank the planets by size.\n"
        "Task 12: Suggest a name for a bakery.\n"
        "13.\n"
        "\nI hope these help!"
    )
    assert parse_instructions(reply) == [
        "Write a sonnet about autumn leaves.",
        "Explain the rules of chess to a beginner.",
        "Rank the planets by size.",
        "Suggest a name for a bakery.",
        "",
    ]


@pytest.mark.parametrize(
    ("instruction", "reason"),
    [
        ("Write a poem.", None),
        ("", DROP_TOO_SHORT),
        ("Summarise this", DROP_TOO_SHORT),
        (" ".join(["word"] * 151), DROP_TOO_LONG),
        ("Draw a cat sitting on a mat.", DROP_BLOCKED_KEYWORD),
        ("Describe the images in this article.", DROP_BLOCKED_KEYWORD),
        ("Tell me how to go  to the station.", DROP_BLOCKED_KEYWORD),
        ("Summarise the plot of the novel.", DROP_BLOCKED_KEYWORD),
        ("Write a profile of a famous chef.", None),  # "file" only as a whole word
        ("- Write a poem about rain.", DROP_BAD_START),
        ("3 ways to relax after work", DROP_BAD_START),
        ("Écrivez un poème sur la mer.", DROP_BAD_START),
    ],
)
def test_filter_instruction_reasons(instruction: str, reason: str | None) -> None:
    assert filter_instruction(instruction) == reason


def test_filter_instruction_near_duplicate() -> None:
    pool = RougeLFilter(0.7, ["Write a short poem about the sea."])
    assert filter_instruction("Write a poem about the sea.", pool) == DROP_NEAR_DUPLICATE
    assert filter_instruction("List three facts about volcanoes.", pool) is None
    assert len(pool) == 1  # filtering never adds


def test_instance_prompts_and_parsing() -> None:
    cls_example = SeedTask("Classify the sentiment.", "I loved it.", "Positive", True)
    gen_example = SeedTask("Write a haiku about rain.", "", "Soft rain...", False)

    output_first = build_instance_prompt("Is the email spam?", True, examples=[cls_example], max_instances=2)
    assert output_first.startswith(OUTPUT_FIRST_PROMPT_HEADER)
    assert output_first.index("Label: Positive") < output_first.index("Input: I loved it.")
    assert output_first.rstrip().splitlines()[-2] == "Task: Is the email spam?"

    input_first = build_instance_prompt("Write a limerick.", False, examples=[gen_example])
    assert input_first.startswith(INPUT_FIRST_PROMPT_HEADER)
    assert "Input: (none)\nOutput: Soft rain..." in input_first

    reply = "Example 1\nLabel: Spam\nInput: Win a prize now!\n\nExample 2\n**Label:** Not spam\n**Input:** Lunch at 1?"
    assert parse_instances(reply, output_first=True) == [
        Instance("Win a prize now!", "Spam"),
        Instance("Lunch at 1?", "Not spam"),
    ]
    reply = (
        "Example 1\nInput: (none)\nOutput: There once was a cat\nfrom Peru.\nExample 2\nInput: N/A\nOutput:"
    )
    assert parse_instances(reply, output_first=False) == [
        Instance("", "There once was a cat\nfrom Peru."),
        Instance("", ""),
    ]
    assert parse_yes_no(" Yes.") is True and parse_yes_no("no") is False
    assert parse_yes_no("Classification: Yes") is True and parse_yes_no("Maybe, not sure") is None


# --- end to end with a scripted generator ---------------------------------------------------------------


class ScriptedGenerator:
    """A real ``Generator``: replies from fixed scripts, chosen by the prompt's first line.

    Instruction prompts consume ``instruction_replies`` in order (``(text, stopped)``; it raises
    when they run out, so an unexpected extra request fails the test). Classification says Yes
    for tasks containing "spam"; instance replies depend on the prompt's format.
    """

    def __init__(self, instruction_replies: list[tuple[str, bool]]) -> None:
        self.instruction_replies = list(instruction_replies)
        self.prompts: list[str] = []
        self.params: list[GenerationParams] = []

    def chat(self, chats: list[Chat], params: GenerationParams) -> list[list[Generation]]:
        self.params.append(params)
        return [[self._reply(chat[-1]["content"])] * params.num_samples for chat in chats]

    def _reply(self, prompt: str) -> Generation:
        self.prompts.append(prompt)
        if prompt.startswith(INSTRUCTION_PROMPT_HEADER):
            if not self.instruction_replies:
                raise AssertionError("more instruction requests than scripted")
            text, stopped = self.instruction_replies.pop(0)
            return Generation(text, stopped=stopped, finish_reason="stop" if stopped else "length")
        if prompt.startswith(CLASSIFICATION_PROMPT_HEADER):
            task = re.findall(r"^Task: (.*)$", prompt, re.MULTILINE)[-1]
            return Generation("Yes" if "spam" in task else "No", stopped=True, finish_reason="stop")
        if prompt.startswith(OUTPUT_FIRST_PROMPT_HEADER):
            text = (
                "Example 1\nLabel: Spam\nInput: You won a free cruise!\n\n"
                "Example 2\nLabel: Not spam\nInput: Meeting moved to 3pm.\n\n"
                "Example 3\nLabel: Spam\nInput: You won a free cruise!"  # exact duplicate
            )
            return Generation(text, stopped=True, finish_reason="stop")
        if prompt.startswith(INPUT_FIRST_PROMPT_HEADER):
            return Generation(
                "Example 1\nInput: (none)\nOutput: A fine answer.", stopped=True, finish_reason="stop"
            )
        raise AssertionError(f"unexpected prompt: {prompt[:80]}")


ROUND_1 = (
    "9. Decide whether the message qwzx is spam.\n"
    "10. Summarise the paragraph in one sentence.\n"  # a seed: near-duplicate
    "11. Draw a picture of a lighthouse.\n"  # blocked keyword
    "12. Ok\n"  # too short
    "13. 42 is the answer to what question\n"  # bad start
    "14. Explain plomvek trasindu goravel",
    True,
)
ROUND_2 = (
    "9. Invent a recipe using fennel kumquat\n"
    "10. Explain plomvek trasindu goravel please\n"  # near-duplicate of round 1
    "11. Compose a sonnet about a tired",  # cut off by the token limit
    False,
)
ROUND_3 = ("9. Name four obscure zymurgy tools\n10. Translate vorpal snicker snack", True)


def test_run_self_instruct_end_to_end() -> None:
    generator = ScriptedGenerator([ROUND_1, ROUND_2, ROUND_3])
    seeds = load_seed_tasks()
    result = run_self_instruct(generator, seeds, num_instructions=4, seed=0, prompts_per_round=1)

    assert [instruction for instruction, _ in result.instructions] == [
        "Decide whether the message qwzx is spam.",
        "Explain plomvek trasindu goravel",
        "Invent a recipe using fennel kumquat",
        "Name four obscure zymurgy tools",
    ]
    assert result.drop_counts == {
        DROP_NEAR_DUPLICATE: 2,
        DROP_BLOCKED_KEYWORD: 1,
        DROP_TOO_SHORT: 1,
        DROP_BAD_START: 1,
        DROP_TRUNCATED_INSTRUCTION: 1,
        "surplus_instruction": 1,
        DROP_DUPLICATE_INSTANCE: 1,
    }

    instruction_prompts = [p for p in generator.prompts if p.startswith(INSTRUCTION_PROMPT_HEADER)]
    seed_instructions = {task.instruction for task in seeds}
    # Round 1: nothing generated yet -> 8 seeds. Rounds 2-3: 6 seeds then 2 generated.
    first = listed_instructions(instruction_prompts[0])
    assert len(first) == 8 and all(text in seed_instructions for _, text in first)
    for prompt in instruction_prompts[1:]:
        listed = [text for _, text in listed_instructions(prompt)]
        assert len(listed) == 8
        assert all(text in seed_instructions for text in listed[:6])
        assert all(text in {i for i, _ in result.instructions} for text in listed[6:])

    # The spam task is classification -> output-first prompt, label recorded as the output.
    spam_prompts = [p for p in generator.prompts if "Task: Decide whether the message qwzx is spam." in p]
    assert any(p.startswith(OUTPUT_FIRST_PROMPT_HEADER) for p in spam_prompts)
    spam_records = [r for r in result.records if r.instruction.startswith("Decide whether the message")]
    assert [(r.input, r.output, r.is_classification) for r in spam_records] == [
        ("You won a free cruise!", "Spam", True),
        ("Meeting moved to 3pm.", "Not spam", True),
    ]
    other = [r for r in result.records if not r.is_classification]
    assert len(other) == 3 and all(r.input == "" and r.output == "A fine answer." for r in other)

    assert result.alpaca()[0] == {
        "instruction": "Decide whether the message qwzx is spam.",
        "input": "You won a free cruise!",
        "output": "Spam",
    }
    assert result.messages()[0]["messages"] == [
        {"role": "user", "content": "Decide whether the message qwzx is spam.\n\nYou won a free cruise!"},
        {"role": "assistant", "content": "Spam"},
    ]
    # A different sampling seed each round, so rounds do not replay cached samples.
    instruction_seeds = [p.seed for p in generator.params if p.temperature > 0]
    assert instruction_seeds == [0, 1, 2]


def test_run_self_instruct_is_deterministic_and_stops() -> None:
    seeds = load_seed_tasks()
    first = ScriptedGenerator([ROUND_1, ROUND_2, ROUND_3])
    second = ScriptedGenerator([ROUND_1, ROUND_2, ROUND_3])
    a = run_self_instruct(first, seeds, num_instructions=4, seed=3, prompts_per_round=1)
    b = run_self_instruct(second, seeds, num_instructions=4, seed=3, prompts_per_round=1)
    assert first.prompts == second.prompts and a == b

    # A generator that only repeats itself ends after max_rounds with fewer instructions.
    repeating = ScriptedGenerator([ROUND_1] * 3)
    result = run_self_instruct(repeating, seeds, num_instructions=10, prompts_per_round=1, max_rounds=3)
    assert result.stats["rounds"] == 3 and result.stats["instructions"] == 2
