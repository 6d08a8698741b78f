"""Load an experiment from YAML: expand environment variables, validate, explain errors."""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from cellbench.config.schema import (
    DATA_ENV_VAR,
    Config,
    CropsSource,
    FieldsSource,
    default_data_root,
)
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
        lines = [f"{source}: {_describe(error, expanded)}" for error in exc.errors()]
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


def _describe(error: dict, raw: dict) -> str:
    """Turn one pydantic error into `key.path: problem`, with a suggestion for typos."""
    loc = [str(part) for part in error["loc"] if not str(part).startswith("function-")]
    # Drop the union tags pydantic inserts into the path (e.g. "synthetic", "random_forest").
    key_path = ".".join(_strip_union_tags(error["loc"]))
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = f"unknown key {loc[-1]!r}"
        suggestion = _suggest(error["loc"], raw)
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


def _strip_union_tags(loc: tuple) -> list[str]:
    tags = {
        "synthetic",
        "fields",
        "crops",
        "classical",
        "stardist",
        "cellpose",
        "none",
        "random_forest",
        "mlp",
    }
    parts = [str(p) for p in loc]
    return [p for i, p in enumerate(parts) if not (p in tags and i + 1 < len(parts))]


def _suggest(loc: tuple, raw: dict) -> str | None:
    """Suggest the valid key closest to an unknown one, from the schema of its section."""
    model: type[BaseModel] | None = Config
    for part in loc[:-1]:
        if model is None:
            return None
        field = model.model_fields.get(str(part))
        if field is None:
            continue
        model = _model_of(field.annotation, raw_tag=str(part))
    if model is None:
        return None
    matches = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return matches[0] if matches else None


def _model_of(annotation: Any, raw_tag: str) -> type[BaseModel] | None:
    """Find the pydantic model inside an annotation (unwrapping Annotated, list, union)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_of(arg, raw_tag)
        if found is not None:
            return found
    metadata_origin = getattr(annotation, "__origin__", None)
    if metadata_origin is not None:
        return _model_of(metadata_origin, raw_tag)
    return None


def stable_hash(value: Any) -> str:
    """Hash a JSON-able value (e.g. a few config sections) into 16 hex characters.

    A task is redone when the hash of the settings it depends on changes, and only then.
    """
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
