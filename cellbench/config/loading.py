"""Load an experiment from YAML: expand environment variables, validate, explain errors."""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from cellbench.config.base import union_members
from cellbench.config.data import DATA_ENV_VAR, CropsSource, FieldsSource, default_data_root
from cellbench.config.schema import Config
from cellbench.config.yaml_file import read_yaml
from cellbench.errors import ConfigError

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def load_config(path: str | Path) -> Config:
    """Read, expand and validate an experiment config.

    Parameters
    ----------
    path : str or Path
        A YAML file.

    Returns
    -------
    Config
        The validated experiment, with absolute paths.

    Raises
    ------
    ConfigError
        The file is missing or not YAML, a `${VAR}` is unset, or a value is invalid; the message
        names the file, the key path and the problem, one line per problem.
    """
    path = Path(path)
    try:
        raw = read_yaml(path, what="config file")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return config_from_dict(raw, source=str(path))


def config_from_dict(raw: dict[str, Any], source: str = "<config>") -> Config:
    """Validate a config given as a dict (environment variables expanded, paths absolutised)."""
    expanded = _expand_env(raw, key_path=(), source=source)
    try:
        config = Config.model_validate(expanded)
    except ValidationError as exc:
        lines = [f"{source}: {_describe(error)}" for error in exc.errors()]
        raise ConfigError("\n".join(lines)) from None
    config.results_root = config.results_root.resolve()
    if isinstance(config.data.input, FieldsSource | CropsSource):
        config.data.input.root = config.data.input.root.resolve()
    return config


def _expand_env(value: Any, key_path: tuple, source: str) -> Any:
    """Replace `${VAR}` in every string of a nested YAML value."""
    if isinstance(value, dict):
        return {k: _expand_env(v, (*key_path, k), source) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, (*key_path, i), source) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        name = match.group(1)
        if name == DATA_ENV_VAR:
            return str(default_data_root())
        if name not in os.environ:
            key = ".".join(str(k) for k in key_path)
            raise ConfigError(f"{source}: {key}: environment variable ${{{name}}} is not set")
        return os.environ[name]

    return _ENV_PATTERN.sub(substitute, value)


def _describe(error: dict) -> str:
    """Turn one pydantic error into `key.path: problem`, with a suggestion for typos."""
    loc = [str(part) for part in error["loc"] if not str(part).startswith("function-")]
    keys, _ = _walk(error["loc"])
    key_path = ".".join(keys)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = f"unknown key {loc[-1]!r}"
        suggestion = _suggest(error["loc"])
        if suggestion:
            message += f"; did you mean {suggestion!r}?"
    elif error["type"] == "union_tag_invalid":
        ctx = error.get("ctx", {})
        message = f"unknown value {ctx.get('tag')!r}; expected one of: {ctx.get('expected_tags')}"
    elif error["type"] == "missing":
        message = "required key is missing"
    elif "input" in error and not isinstance(error["input"], dict | list):
        if str(error["input"]) not in message:
            message += f" (got {error['input']!r})"
    return f"{key_path}: {message}" if key_path else message


def _walk(loc: tuple) -> tuple[list[str], Any]:
    """Follow an error location through the schema of `Config`.

    Returns the key path as the user wrote it, without the tag pydantic inserts after a
    tagged union (``models.0.svm.C`` -> ``models.0.C``; the tags of every union are read from
    the schema, `union_members`), and the annotation found at its end (None where the
    location leaves the schema, e.g. a dict key).
    """
    keys: list[str] = []
    node: Any = Config
    for part in loc:
        members = union_members(node)
        if isinstance(part, str) and part in members:
            node = members[part]  # the tag pydantic inserted: not a key of the YAML
            continue
        keys.append(str(part))
        node = _child(node, part)
    return keys, node


def _child(annotation: Any, part: str | int) -> Any:
    """The annotation of key or index `part` inside `annotation`; None where there is none."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(str(part))
        return None if field is None else field.annotation
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):  # X | None: the location is X's
        present = [arg for arg in args if arg is not type(None)]
        return _child(present[0], part) if len(present) == 1 else None
    if origin in (list, tuple, set, frozenset) and isinstance(part, int) and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    return None


def _suggest(loc: tuple) -> str | None:
    """Suggest the valid key closest to an unknown one, from the schema of its section."""
    _, node = _walk(loc[:-1])
    model = _model_of(node)
    if model is None:
        return None
    matches = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return matches[0] if matches else None


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """Find the pydantic model inside an annotation (unwrapping Annotated, list, union)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_of(arg)
        if found is not None:
            return found
    metadata_origin = getattr(annotation, "__origin__", None)
    if metadata_origin is not None:
        return _model_of(metadata_origin)
    return None


def stable_hash(value: Any) -> str:
    """Hash a JSON-able value (e.g. a few config sections) into 16 hex characters.

    A task is redone when the hash of the settings it depends on changes, and only then.
    """
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
