"""Typed configs: YAML files plus ``a.b=value`` overrides, validated by pydantic.

Every command has one pydantic model. Unknown keys are errors that suggest the closest valid key;
a type error names the YAML file and line the bad value came from (or the override that set it).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path
from types import UnionType
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from alignkit.errors import ConfigError

T = TypeVar("T", bound="StrictModel")


def _takes_list(annotation: Any) -> bool:
    return get_origin(annotation) is list or any(get_origin(arg) is list for arg in get_args(annotation))


def _takes_str(annotation: Any) -> bool:
    return annotation is str or str in get_args(annotation)


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are refused, values validated on assignment.

    A list-valued key given one string (``lora.target_modules=q_proj,v_proj`` on the command line) is split
    at its commas; a string with spaces is left whole (text, not a list of names), and so is a comma-free
    string where the key also takes a single string (``target_modules=all-linear``)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    @model_validator(mode="before")
    @classmethod
    def _comma_separated_lists(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for name, info in cls.model_fields.items():
            value = data.get(name)
            if not isinstance(value, str) or not _takes_list(info.annotation) or any(c.isspace() for c in value):
                continue
            if "," in value or not _takes_str(info.annotation):
                data = {**data, name: [part for part in value.split(",") if part]}
        return data


def _yaml_line_map(text: str) -> dict[tuple[str, ...], int]:
    """Maps each key path in a YAML document to its 1-based line, for error messages."""
    lines: dict[tuple[str, ...], int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key_path = (*path, str(key_node.value))
                lines[key_path] = key_node.start_mark.line + 1
                walk(value_node, key_path)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                item_path = (*path, str(index))
                lines[item_path] = item.start_mark.line + 1
                walk(item, item_path)

    if root is not None:
        walk(root, ())
    return lines


def read_yaml(path: str | Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    """Reads a YAML mapping and the line of every key. Raises ConfigError on bad YAML."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason})", source=str(path)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"invalid YAML: {problem}", source=str(path), line=line) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping of config keys at the top level", source=str(path), line=1)
    return data, _yaml_line_map(text)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=1e-4"`` -> (["train", "lr"], 1e-4). The value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected key=value", source="<command line>")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r}: expected a dotted key like train.lr", source="<command line>")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    # "system=You are: a bot" is text, not a YAML mapping; structures need explicit brackets.
    if isinstance(value, dict | list) and not raw.lstrip().startswith(("{", "[")):
        value = raw
    return key.split("."), value


def _set_path(data: dict[str, Any], path: list[str], value: Any) -> None:
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value


def _valid_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """All dotted keys a model accepts, for 'did you mean' suggestions."""
    keys: list[str] = []
    for name, field in model.model_fields.items():
        dotted = f"{prefix}{name}"
        keys.append(dotted)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(_valid_keys(annotation, dotted + "."))
    return keys


# What people bring from transformers' TrainingArguments, TRL's configs and PEFT's LoraConfig, and the key
# that means the same here. Spelling alone would send ``learning_rate`` to ``early_stopping_patience``.
KNOWN_NAMES: dict[str, tuple[str, ...]] = {
    "learning_rate": ("train.lr", "lr"),
    "gradient_accumulation_steps": ("train.grad_accum", "grad_accum"),
    "num_train_epochs": ("train.epochs", "epochs"),
    "per_device_train_batch_size": ("train.batch_size", "batch_size"),
    "train_batch_size": ("train.batch_size", "batch_size"),
    "per_device_eval_batch_size": ("train.batch_size", "batch_size"),
    "lr_scheduler_type": ("train.schedule", "schedule"),
    "logging_steps": ("train.log_every", "log_every"),
    "save_steps": ("train.save_every", "save_every"),
    "eval_steps": ("train.eval_every", "eval_every"),
    "save_total_limit": ("train.keep_last", "keep_last"),
    "adam_beta1": ("train.adam_betas", "adam_betas"),
    "adam_beta2": ("train.adam_betas", "adam_betas"),
    "adam_epsilon": ("train.adam_eps", "adam_eps"),
    "max_seq_length": ("data.max_length", "max_length"),
    "max_length": ("data.max_length", "max_length"),
    "max_prompt_length": ("data.max_length", "max_length"),
    "dataset_text_field": ("data.kind",),
    "lora_r": ("lora.r",),
    "lora_alpha": ("lora.alpha",),
    "lora_dropout": ("lora.dropout",),
    "bf16": ("dtype",),
    "fp16": ("dtype",),
    "torch_dtype": ("dtype",),
    "model_name_or_path": ("model",),
    "num_generations": ("grpo.group_size",),
    "max_completion_length": ("rollout.max_new_tokens",),
    "max_new_tokens": ("rollout.max_new_tokens",),
    "resume_from_checkpoint": ("resume",),
    "rpo_alpha": ("sft_weight",),
    "loss_type": ("loss",),
    # Every command's output is ``out``; these are TrainingArguments' name and alignkit's own earlier ones.
    "output_dir": ("out",),
    "json_out": ("out",),
    "output": ("out",),
}


def closest_key(bad_key: str, candidates: list[str]) -> str | None:
    """The valid key meant by ``bad_key``: a known transformers/TRL/PEFT name, else the closest spelling."""
    leaf = bad_key.rsplit(".", 1)[-1]
    prefix = bad_key.rsplit(".", 1)[0] + "." if "." in bad_key else ""
    for meant in KNOWN_NAMES.get(leaf, ()):
        for key in (prefix + meant, meant):
            if key in candidates:
                return key
    match = difflib.get_close_matches(bad_key, candidates, n=1, cutoff=0.6)
    if not match:
        leaves = {key.rsplit(".", 1)[-1]: key for key in candidates}
        leaf_match = difflib.get_close_matches(leaf, list(leaves), n=1, cutoff=0.6)
        match = [leaves[leaf_match[0]]] if leaf_match else []
    return match[0] if match else None


def _suggest(bad_key: str, model: type[BaseModel]) -> str:
    match = closest_key(bad_key, _valid_keys(model))
    return f" (did you mean {match!r}?)" if match else ""


def validate_config(
    model: type[T],
    data: dict[str, Any],
    *,
    source: str = "<config>",
    lines: dict[tuple[str, ...], int] | None = None,
    override_keys: set[tuple[str, ...]] | None = None,
) -> T:
    """Validates ``data`` into ``model``; the first problem becomes a one-line ConfigError."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        path = tuple(str(part) for part in error["loc"])
        dotted = ".".join(path)
        where = source
        line = (lines or {}).get(path)
        # An override owns its key and everything under it (``paths=[a, 3]`` fails at ``paths.1``), and the
        # section it made up (``trian.lr=1`` fails at ``trian``).
        owner = next((key for key in override_keys or () if path[: len(key)] == key or key[: len(path)] == path), None)
        if owner is not None:
            where, line = "<command line>", None
        if error["type"] == "extra_forbidden":
            meant = ".".join(owner) if owner is not None and len(owner) > len(path) else dotted
            raise ConfigError(
                f"unknown key{_suggest(meant, model)}", source=where, line=line, field=meant
            ) from None
        expected = error["msg"]
        got = error.get("input")
        got_text = "" if isinstance(got, dict) else f", got {got!r}"
        raise ConfigError(f"{expected}{got_text}", source=where, line=line, field=dotted) from None


def load_config(
    model: type[T],
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    *,
    defaults: dict[str, Any] | None = None,
) -> T:
    """YAML file (optional) + defaults + ``a.b=value`` overrides -> a validated config."""
    data: dict[str, Any] = json.loads(json.dumps(defaults or {}))
    lines: dict[tuple[str, ...], int] = {}
    source = "<config>"
    if path is not None:
        file_data, lines = read_yaml(path)
        source = str(path)
        data = _deep_merge(data, file_data)
    override_keys: set[tuple[str, ...]] = set()
    for text in overrides or []:
        key_path, value = parse_override(text)
        _set_path(data, key_path, value)
        override_keys.add(tuple(key_path))
    return validate_config(model, data, source=source, lines=lines, override_keys=override_keys)


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def config_to_yaml(config: BaseModel) -> str:
    """The resolved config as YAML (what ``--print-config`` prints and runs save)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def config_hash(config: BaseModel) -> str:
    """A stable hash of the resolved config, for manifests and cache keys."""
    payload = json.dumps(config.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------------------------
# The reference of a config class: what ``--help`` lists and ``--print-config`` comments.


def type_name(annotation: Any) -> str:
    """A short name of a field's type: ``float``, ``int|None``, ``lora|full|qlora``, ``list[str]``."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return "|".join(str(arg) for arg in args)
    if origin in (UnionType, Union):
        return "|".join(type_name(arg) for arg in args)
    if origin is not None:
        inner = ",".join(type_name(arg) for arg in args if arg is not Ellipsis)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def _section(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def config_reference(model: type[BaseModel], prefix: str = "",
                     defaults: BaseModel | None = None) -> list[tuple[str, str, Any, str]]:
    """Every leaf key of a config class: (dotted key, type, default, description), in declaration order.
    A section's defaults are those of the section its parent makes (sft's ``train`` has its own ``lr``)."""
    rows: list[tuple[str, str, Any, str]] = []
    for name, info in model.model_fields.items():
        section = _section(info.annotation)
        default = getattr(defaults, name) if defaults is not None else info.get_default(call_default_factory=True)
        if section is not None:
            rows.extend(config_reference(section, f"{prefix}{name}.", default if isinstance(default, section) else None))
            continue
        if isinstance(default, BaseModel):
            default = default.model_dump(mode="json")
        rows.append((prefix + name, type_name(info.annotation), default, info.description or ""))
    return rows


def _inline(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()


def config_to_commented_yaml(config: BaseModel) -> str:
    """The resolved config as YAML with each key's type and description as a comment (``--print-config``);
    it loads back to the same config."""
    lines: list[str] = []

    def emit(model: BaseModel, indent: str) -> None:
        for name, info in type(model).model_fields.items():
            value = getattr(model, name)
            if isinstance(value, BaseModel):
                lines.append(f"{indent}{name}:")
                emit(value, indent + "  ")
                continue
            text = _inline(_jsonable(model, name))
            comment = ": ".join(filter(None, [type_name(info.annotation), info.description or ""]))
            lines.append(f"{indent}{name}: {text}  # {comment}".replace("\n", " "))

    emit(config, "")
    return "\n".join(lines) + "\n"


def _jsonable(model: BaseModel, name: str) -> Any:
    return model.model_dump(mode="json", include={name})[name]
