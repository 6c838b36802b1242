"""Typed configs: YAML files plus ``a.b=value`` overrides, validated by pydantic.

Every command has one pydantic model. Unknown keys are errors that suggest the closest valid key;
a type error names the YAML file and line the bad value came from (or the override that set it).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from alignkit.errors import ConfigError

T = TypeVar("T", bound="StrictModel")


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are refused, values validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


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


def _suggest(bad_key: str, model: type[BaseModel]) -> str:
    candidates = _valid_keys(model)
    match = difflib.get_close_matches(bad_key, candidates, n=1, cutoff=0.5)
    if not match:
        leaf = bad_key.rsplit(".", 1)[-1]
        leaves = {key.rsplit(".", 1)[-1]: key for key in candidates}
        leaf_match = difflib.get_close_matches(leaf, list(leaves), n=1, cutoff=0.6)
        match = [leaves[leaf_match[0]]] if leaf_match else []
    return f" (did you mean {match[0]!r}?)" if match else ""


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
        # An override owns its key and everything under it (``paths=[a, 3]`` fails at ``paths.1``).
        if override_keys and any(path[: len(key)] == key for key in override_keys):
            where, line = "<command line>", None
        if error["type"] == "extra_forbidden":
            raise ConfigError(
                f"unknown key{_suggest(dotted, model)}", source=where, line=line, field=dotted
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
