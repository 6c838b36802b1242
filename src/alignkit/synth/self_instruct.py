"""Self-Instruct (Wang et al., 2023): grow an instruction-tuning set from a few seed tasks.

The pipeline, one stage after the other:

1. Instruction generation, in rounds. Each request shows 8 instructions, 6 sampled from the seed
   tasks and 2 from the instructions generated so far (all 8 from the seeds until 2 exist: the
   paper's 75/25 mix) and asks the generator to continue the numbered list.
2. Filtering each parsed instruction, counting every drop by reason: fewer than 3 or more than
   150 words; a blocked keyword (a task a text model cannot do: image, plot, go to, ...); not
   starting with an ASCII letter; ROUGE-L F ``>= 0.7`` against any instruction already in the pool
   (seeds included). Survivors join the pool at once, so a batch is also filtered against itself.
3. Classification identification: a few-shot Yes/No prompt whose examples are seed tasks.
4. Instance generation: classification tasks are "output-first" (the label, then an input of that
   label, which avoids inputs that all belong to one class); others "input-first".
5. Instance filtering: empty output, a truncated last instance, exact duplicates.

Where this departs from the paper: the generator is a chat model, so the continuation prompt is a
user message that asks for the list (no bare "Task 9:" completion); ``>= 0.7`` instead of ``> 0.7``
(the alignkit issue's rule); classification uses seed tasks as shots instead of a fixed list; the
paper's extra keyword rule against "Write a program" is not applied.

Everything is deterministic given ``seed`` and the generator's replies, so with a caching HTTP
generator a rerun after a crash sends the same requests and pays only for the ones not yet cached.
"""

from __future__ import annotations

import importlib.resources
import json
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from alignkit.errors import ConfigError, DataError
from alignkit.generation.types import Chat, Generation, GenerationParams, Generator
from alignkit.synth.rouge import RougeLFilter

# Drop reasons (keys of SelfInstructResult.drop_counts).
DROP_TOO_SHORT = "too_short"
DROP_TOO_LONG = "too_long"
DROP_BLOCKED_KEYWORD = "blocked_keyword"
DROP_BAD_START = "bad_start"
DROP_NEAR_DUPLICATE = "near_duplicate"
DROP_TRUNCATED_INSTRUCTION = "truncated_instruction"
DROP_SURPLUS_INSTRUCTION = "surplus_instruction"
DROP_TASK_WITHOUT_INSTANCES = "task_without_instances"
DROP_EMPTY_OUTPUT = "empty_output"
DROP_TRUNCATED_INSTANCE = "truncated_instance"
DROP_DUPLICATE_INSTANCE = "duplicate_instance"

# Tasks a text-only model cannot do (the paper's list); matched as whole words, plural too.
BLOCKED_KEYWORDS: tuple[str, ...] = (
    "image",
    "picture",
    "graph",
    "file",
    "map",
    "draw",
    "plot",
    "go to",
    "video",
    "audio",
    "music",
    "flowchart",
    "diagram",
)

# First lines of the prompts: a scripted test generator can route on them.
INSTRUCTION_PROMPT_HEADER = "Come up with new tasks that a text-only AI assistant could be asked to do."
CLASSIFICATION_PROMPT_HEADER = "Decide whether a task is a classification task."
INPUT_FIRST_PROMPT_HEADER = "Write examples of the task below."
OUTPUT_FIRST_PROMPT_HEADER = "Write examples of the classification task below."

_SEED_FILE = "seed_tasks.jsonl"
_NUMBERED_LINE_RE = re.compile(
    r"^\s*(?:\*\*)?(?:task\s*)?(\d{1,3})\s*[.):]\s*(?:\*\*)?\s*(.*)$", re.IGNORECASE
)
_EXAMPLE_MARKER_RE = re.compile(r"^[^\w\n]*example\s*\d+[^\w\n]*$", re.IGNORECASE | re.MULTILINE)
# Only the two fields of the format are markers, so "Label:" inside an input-first input stays text.
_INPUT_FIRST_FIELDS_RE = re.compile(r"^[ \t*]*(input|output)[ \t*]*:[ \t*]*", re.IGNORECASE | re.MULTILINE)
_OUTPUT_FIRST_FIELDS_RE = re.compile(r"^[ \t*]*(label|input)[ \t*]*:[ \t*]*", re.IGNORECASE | re.MULTILINE)
_NO_INPUT = frozenset({"", "(none)", "none", "n/a", "na", "no input", "<noinput>", "(no input)", "-"})
_WHITESPACE_RE = re.compile(r"\s+")


@dataclass(frozen=True)
class SeedTask:
    """One seed task with one instance; ``input`` may be empty."""

    instruction: str
    input: str
    output: str
    is_classification: bool


@dataclass(frozen=True)
class Instance:
    """One parsed (input, output) pair; ``input`` is "" when the task takes none."""

    input: str
    output: str


@dataclass(frozen=True)
class SelfInstructRecord:
    """A generated example: a new instruction, one of its instances, and its task type."""

    instruction: str
    input: str
    output: str
    is_classification: bool

    def to_alpaca(self) -> dict[str, str]:
        return {"instruction": self.instruction, "input": self.input, "output": self.output}

    def to_messages(self) -> dict[str, list[dict[str, str]]]:
        user = f"{self.instruction}\n\n{self.input}" if self.input else self.instruction
        return {
            "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": self.output}]
        }


@dataclass
class SelfInstructResult:
    """Records, the accepted instructions (with their type), drops by reason, and run counters."""

    records: list[SelfInstructRecord]
    instructions: list[tuple[str, bool]]
    drop_counts: dict[str, int]
    stats: dict[str, int] = field(default_factory=dict)

    def alpaca(self) -> list[dict[str, str]]:
        return [record.to_alpaca() for record in self.records]

    def messages(self) -> list[dict[str, list[dict[str, str]]]]:
        return [record.to_messages() for record in self.records]


# --- seed tasks -------------------------------------------------------------------------------


def load_seed_tasks(path: str | Path | None = None) -> list[SeedTask]:
    """Seed tasks from a JSONL file (default: the 118 tasks shipped with alignkit).

    Each line: ``instruction`` (non-empty str), ``input`` (str, may be ""), ``output`` (non-empty
    str), ``is_classification`` (bool). A bad line raises DataError naming file, line and field.
    """
    if path is None:
        source = f"alignkit/synth/{_SEED_FILE}"
        text = importlib.resources.files("alignkit.synth").joinpath(_SEED_FILE).read_text(encoding="utf-8")
    else:
        source = str(path)
        text = Path(path).read_text(encoding="utf-8")
    tasks = [_parse_seed_line(line, source, number) for number, line in enumerate(text.splitlines(), 1)]
    return [task for task in tasks if task is not None]


def _parse_seed_line(line: str, source: str, number: int) -> SeedTask | None:
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON ({exc.msg})", source=source, line=number) from exc
    if not isinstance(record, dict):
        raise DataError("expected a JSON object", source=source, line=number)
    for name in ("instruction", "input", "output"):
        value = record.get(name)
        if not isinstance(value, str):
            raise DataError("expected a string", source=source, line=number, field=name)
        if name != "input" and not value.strip():
            raise DataError("must not be empty", source=source, line=number, field=name)
    if not isinstance(record.get("is_classification"), bool):
        raise DataError("expected true or false", source=source, line=number, field="is_classification")
    return SeedTask(record["instruction"], record["input"], record["output"], record["is_classification"])


# --- stage 1: instruction prompts -----------------------------------------------------------------


def sample_prompt_instructions(
    rng: random.Random,
    seed_instructions: Sequence[str],
    generated_instructions: Sequence[str],
    *,
    num_seed: int = 6,
    num_generated: int = 2,
) -> tuple[list[str], list[str]]:
    """``(seed_sample, generated_sample)``: 6 + 2, or 8 + 0 while fewer than 2 were generated."""
    if len(generated_instructions) >= num_generated:
        return rng.sample(list(seed_instructions), num_seed), rng.sample(
            list(generated_instructions), num_generated
        )
    return rng.sample(list(seed_instructions), num_seed + num_generated), []


def build_instruction_prompt(
    seed_sample: Sequence[str], generated_sample: Sequence[str], *, num_new: int = 8
) -> str:
    """Numbered list of the sampled instructions (seeds first, then generated) and the ask to continue it."""
    shown = [*seed_sample, *generated_sample]
    listing = "\n".join(f"{i}. {_one_line(text)}" for i, text in enumerate(shown, start=1))
    first, last = len(shown) + 1, len(shown) + num_new
    return (
        f"{INSTRUCTION_PROMPT_HEADER} Here are {len(shown)} examples:\n\n"
        f"{listing}\n\n"
        f"Continue the numbered list with {num_new} new tasks, numbered {first} to {last}.\n"
        "- Make each task different from the examples and from each other: vary the topic, the verb "
        "and the kind of answer (a label, a rewrite, open-ended writing, reasoning, extraction, advice, code).\n"
        "- Write each task as an instruction to the assistant, one or two sentences on a single line.\n"
        "- Only tasks a language model can do in text: nothing that needs seeing, hearing, drawing, "
        "browsing or acting in the world.\n"
        "- Reply with the numbered list only."
    )


def parse_instructions(text: str) -> list[str]:
    """Items of a numbered list (``9. ...``, ``9) ...``, ``Task 9: ...``), in order.

    A non-numbered line right after an item continues it; a blank line ends the item, so
    commentary after the list is ignored, and so is any preamble before the first number.
    """
    items: list[str] = []
    open_item = False
    for line in text.splitlines():
        match = _NUMBERED_LINE_RE.match(line)
        if match:
            items.append(match.group(2).strip())
            open_item = True
        elif not line.strip():
            open_item = False
        elif open_item:
            items[-1] = f"{items[-1]} {line.strip()}".strip()
    return items


def normalise_instruction(text: str) -> str:
    """Whitespace collapsed, stripped, first letter upper-cased (the rest is kept as written)."""
    text = _one_line(text)
    return text[:1].upper() + text[1:]


def _one_line(text: str) -> str:
    return _WHITESPACE_RE.sub(" ", text).strip()


def _keyword_pattern(keywords: Sequence[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(keyword).replace(r"\ ", r"\s+") for keyword in keywords)
    return re.compile(rf"\b(?:{alternatives})s?\b", re.IGNORECASE)


_BLOCKED_RE = _keyword_pattern(BLOCKED_KEYWORDS)


def filter_instruction(
    instruction: str,
    pool: RougeLFilter | None = None,
    *,
    min_words: int = 3,
    max_words: int = 150,
    blocked_keywords: Sequence[str] = BLOCKED_KEYWORDS,
) -> str | None:
    """The reason to drop ``instruction`` (a ``DROP_*`` value), or None to keep it.

    Cheap checks first; the ROUGE-L check against ``pool`` last. Does not add to the pool.
    """
    num_words = len(instruction.split())
    if num_words < min_words:
        return DROP_TOO_SHORT
    if num_words > max_words:
        return DROP_TOO_LONG
    if not ("a" <= instruction[0].lower() <= "z"):
        return DROP_BAD_START
    blocked = _BLOCKED_RE if blocked_keywords is BLOCKED_KEYWORDS else _keyword_pattern(blocked_keywords)
    if blocked_keywords and blocked.search(instruction):
        return DROP_BLOCKED_KEYWORD
    if pool is not None and pool.is_near_duplicate(instruction):
        return DROP_NEAR_DUPLICATE
    return None


# --- stage 3: classification ------------------------------------------------------------------------


def pick_classification_examples(
    rng: random.Random, seed_tasks: Sequence[SeedTask], k: int = 8
) -> list[SeedTask]:
    """Up to ``k`` seed tasks, half classification and half not, shuffled."""
    yes = [task for task in seed_tasks if task.is_classification]
    no = [task for task in seed_tasks if not task.is_classification]
    picked = rng.sample(yes, min(len(yes), k // 2)) + rng.sample(no, min(len(no), k - k // 2))
    rng.shuffle(picked)
    return picked


def build_classification_prompt(instruction: str, examples: Sequence[SeedTask]) -> str:
    """Few-shot Yes/No prompt: is ``instruction`` a classification task?"""
    shots = "\n\n".join(
        f"Task: {_one_line(task.instruction)}\nClassification: {'Yes' if task.is_classification else 'No'}"
        for task in examples
    )
    return (
        f"{CLASSIFICATION_PROMPT_HEADER} A classification task is one whose answer is a label from a "
        "small, fixed set of options (Yes/No, true/false, positive/negative, one of a list of categories). "
        "Tasks whose answer is free text, a computed value, a rewrite or a list are not classification tasks.\n\n"
        f"{shots}\n\n"
        f"Task: {_one_line(instruction)}\nClassification:\n\n"
        "Answer with Yes or No only."
    )


def parse_yes_no(text: str) -> bool | None:
    """True when the first yes/no word of the reply is yes, False when no, None without either.

    Searching (not matching at the start) accepts replies like "Classification: Yes".
    """
    match = re.search(r"\b(yes|no)\b", text, re.IGNORECASE)
    return None if match is None else match.group(1).lower() == "yes"


# --- stage 4: instances -------------------------------------------------------------------------------


def build_instance_prompt(
    task: str, output_first: bool, *, examples: Sequence[SeedTask] = (), max_instances: int = 3
) -> str:
    """Ask for up to ``max_instances`` instances of ``task``, showing ``examples`` in the same format.

    Output-first (classification): ``Label:`` then ``Input:``; input-first: ``Input:`` then ``Output:``.
    """
    shots = "\n\n".join(_format_example(example, output_first) for example in examples)
    if output_first:
        header = (
            f"{OUTPUT_FIRST_PROMPT_HEADER} For each example, first choose one of the possible class "
            "labels, then write an input that belongs to that label. Use different labels across "
            "examples when the task has several."
        )
        fields = '"Example N", "Label:", "Input:"'
    else:
        header = (
            f"{INPUT_FIRST_PROMPT_HEADER} For each example, first write an input for the task, then the "
            'correct output. If the task needs no input, write "Input: (none)".'
        )
        fields = '"Example N", "Input:", "Output:"'
    parts = [header, shots] if shots else [header]
    parts.append(
        f"Task: {_one_line(task)}\n"
        f"Write up to {max_instances} examples in the same format ({fields}), each one different."
    )
    return "\n\n".join(parts)


def _format_example(example: SeedTask, output_first: bool) -> str:
    task_input = example.input or "(none)"
    if output_first:
        body = f"Label: {example.output}\nInput: {task_input}"
    else:
        body = f"Input: {task_input}\nOutput: {example.output}"
    return f"Task: {_one_line(example.instruction)}\nExample 1\n{body}"


def parse_instances(text: str, output_first: bool) -> list[Instance]:
    """Instances from a reply in the prompt's format; ``Example N`` lines are optional.

    Fields are read in order; a field seen again starts the next instance. The label is the
    output of an output-first instance. An instance missing its output gets ``output=""``
    (the caller drops and counts it); "(none)"-like inputs become "".
    """
    output_field = "label" if output_first else "output"
    fields_re = _OUTPUT_FIRST_FIELDS_RE if output_first else _INPUT_FIRST_FIELDS_RE
    text = _EXAMPLE_MARKER_RE.sub("", text)
    markers = list(fields_re.finditer(text))
    instances: list[Instance] = []
    current: dict[str, str] = {}
    for position, marker in enumerate(markers):
        name = marker.group(1).lower()
        end = markers[position + 1].start() if position + 1 < len(markers) else len(text)
        value = text[marker.end() : end].strip()
        if name in current:
            instances.append(_instance_from(current, output_field))
            current = {}
        current[name] = value
    if current:
        instances.append(_instance_from(current, output_field))
    return instances


def _instance_from(fields: dict[str, str], output_field: str) -> Instance:
    task_input = fields.get("input", "")
    if task_input.strip().lower() in _NO_INPUT:
        task_input = ""
    return Instance(input=task_input, output=fields.get(output_field, ""))


def pick_instance_examples(
    rng: random.Random, seed_tasks: Sequence[SeedTask], is_classification: bool, k: int = 2
) -> list[SeedTask]:
    """``k`` seed tasks of the same type (any type when none match)."""
    same_type = [task for task in seed_tasks if task.is_classification == is_classification] or list(
        seed_tasks
    )
    return rng.sample(same_type, min(k, len(same_type)))


# --- the run ------------------------------------------------------------------------------------------

DEFAULT_INSTRUCTION_PARAMS = GenerationParams(max_new_tokens=1024, temperature=0.7, top_p=0.5)
DEFAULT_CLASSIFY_PARAMS = GenerationParams(max_new_tokens=4, temperature=0.0)
DEFAULT_INSTANCE_PARAMS = GenerationParams(max_new_tokens=512, temperature=0.0)

ProgressCallback = Callable[[str, int, int], None]


def _user_chat(prompt: str) -> Chat:
    return [{"role": "user", "content": prompt}]


def _generate_instructions(
    generator: Generator,
    seed_instructions: list[str],
    pool: RougeLFilter,
    rng: random.Random,
    drops: Counter[str],
    stats: Counter[str],
    *,
    num_instructions: int,
    prompts_per_round: int,
    new_per_prompt: int,
    max_rounds: int,
    params: GenerationParams,
    on_progress: ProgressCallback | None,
) -> list[str]:
    generated: list[str] = []
    for round_index in range(max_rounds):
        if len(generated) >= num_instructions:
            break
        chats = []
        for _ in range(prompts_per_round):
            seed_sample, generated_sample = sample_prompt_instructions(rng, seed_instructions, generated)
            chats.append(
                _user_chat(build_instruction_prompt(seed_sample, generated_sample, num_new=new_per_prompt))
            )
        # A new sampling seed per round: different rounds must not replay the same samples.
        replies = generator.chat(chats, replace(params, seed=params.seed + round_index))
        stats["instruction_requests"] += len(chats)
        stats["rounds"] += 1
        for reply in (sample for samples in replies for sample in samples):
            _accept_instructions(reply, pool, generated, drops, stats, num_instructions)
        if on_progress is not None:
            on_progress("instructions", min(len(generated), num_instructions), num_instructions)
    return generated


def _accept_instructions(
    reply: Generation,
    pool: RougeLFilter,
    generated: list[str],
    drops: Counter[str],
    stats: Counter[str],
    num_instructions: int,
) -> None:
    items = parse_instructions(reply.text)
    stats["instructions_parsed"] += len(items)
    if items and not reply.stopped:
        # The reply hit the token limit: its last item is probably cut mid-sentence.
        items.pop()
        drops[DROP_TRUNCATED_INSTRUCTION] += 1
    for item in items:
        if len(generated) >= num_instructions:
            drops[DROP_SURPLUS_INSTRUCTION] += 1
            continue
        instruction = normalise_instruction(item)
        reason = filter_instruction(instruction, pool)
        if reason is not None:
            drops[reason] += 1
            continue
        pool.add(instruction)
        generated.append(instruction)


def _in_chunks(
    generator: Generator,
    prompts: list[str],
    params: GenerationParams,
    stage: str,
    on_progress: ProgressCallback | None,
    chunk_size: int = 64,
) -> list[Generation]:
    """First sample of each prompt, sent in chunks so progress can be reported."""
    replies: list[Generation] = []
    for start in range(0, len(prompts), chunk_size):
        chats = [_user_chat(prompt) for prompt in prompts[start : start + chunk_size]]
        replies.extend(samples[0] for samples in generator.chat(chats, replace(params, num_samples=1)))
        if on_progress is not None:
            on_progress(stage, len(replies), len(prompts))
    return replies


def _instances_to_records(
    instruction: str,
    is_classification: bool,
    reply: Generation,
    seen: set[tuple[str, str, str]],
    drops: Counter[str],
) -> list[SelfInstructRecord]:
    instances = parse_instances(reply.text, output_first=is_classification)
    if instances and not reply.stopped:
        instances.pop()
        drops[DROP_TRUNCATED_INSTANCE] += 1
    records = []
    for instance in instances:
        output = instance.output.strip()
        if not output:
            drops[DROP_EMPTY_OUTPUT] += 1
            continue
        key = (instruction, instance.input.strip(), output)
        if key in seen:
            drops[DROP_DUPLICATE_INSTANCE] += 1
            continue
        seen.add(key)
        records.append(SelfInstructRecord(instruction, instance.input.strip(), output, is_classification))
    if not records:
        drops[DROP_TASK_WITHOUT_INSTANCES] += 1
    return records


def run_self_instruct(
    generator: Generator,
    seed_tasks: Sequence[SeedTask],
    *,
    num_instructions: int,
    seed: int = 0,
    rouge_threshold: float = 0.7,
    prompts_per_round: int = 8,
    new_per_prompt: int = 8,
    instances_per_task: int = 3,
    max_rounds: int | None = None,
    instruction_params: GenerationParams = DEFAULT_INSTRUCTION_PARAMS,
    classify_params: GenerationParams = DEFAULT_CLASSIFY_PARAMS,
    instance_params: GenerationParams = DEFAULT_INSTANCE_PARAMS,
    on_progress: ProgressCallback | None = None,
) -> SelfInstructResult:
    """Generate ``num_instructions`` new instructions and their instances with ``generator``.

    ``prompts_per_round`` instruction prompts are sent per generator call; ``max_rounds``
    (default ``10 + 5 * ceil(num_instructions / (prompts_per_round * new_per_prompt))``) stops a
    generator that keeps repeating itself, so fewer instructions than asked can come back (see
    ``stats``). Sampling uses ``random.Random(seed)``; see the module docstring for the stages.
    """
    if len(seed_tasks) < 8:
        raise ConfigError(f"need at least 8 seed tasks, got {len(seed_tasks)}", field="seed_tasks")
    if num_instructions < 0:
        raise ConfigError(f"must be >= 0, got {num_instructions}", field="num_instructions")
    if max_rounds is None:
        max_rounds = 10 + 5 * math.ceil(num_instructions / (prompts_per_round * new_per_prompt))
    rng = random.Random(seed)
    drops: Counter[str] = Counter()
    stats: Counter[str] = Counter()
    seed_instructions = [task.instruction for task in seed_tasks]
    pool = RougeLFilter(rouge_threshold, seed_instructions)

    instructions = _generate_instructions(
        generator,
        seed_instructions,
        pool,
        rng,
        drops,
        stats,
        num_instructions=num_instructions,
        prompts_per_round=prompts_per_round,
        new_per_prompt=new_per_prompt,
        max_rounds=max_rounds,
        params=instruction_params,
        on_progress=on_progress,
    )

    shots = pick_classification_examples(rng, seed_tasks)
    verdicts = _in_chunks(
        generator,
        [build_classification_prompt(instruction, shots) for instruction in instructions],
        classify_params,
        "classify",
        on_progress,
    )
    is_classification = [parse_yes_no(reply.text) is True for reply in verdicts]
    stats["classification_unclear"] = sum(parse_yes_no(reply.text) is None for reply in verdicts)
    stats["classification_tasks"] = sum(is_classification)

    instance_prompts = [
        build_instance_prompt(
            instruction,
            output_first=cls,
            examples=pick_instance_examples(rng, seed_tasks, cls),
            max_instances=instances_per_task,
        )
        for instruction, cls in zip(instructions, is_classification, strict=True)
    ]
    replies = _in_chunks(generator, instance_prompts, instance_params, "instances", on_progress)
    seen: set[tuple[str, str, str]] = set()
    records: list[SelfInstructRecord] = []
    for instruction, cls, reply in zip(instructions, is_classification, replies, strict=True):
        records.extend(_instances_to_records(instruction, cls, reply, seen, drops))

    stats["instructions"] = len(instructions)
    stats["records"] = len(records)
    return SelfInstructResult(
        records=records,
        instructions=list(zip(instructions, is_classification, strict=True)),
        drop_counts=dict(drops),
        stats=dict(stats),
    )
