"""Read YAML files: the only place in cellbench that does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_yaml(path: Path, what: str) -> dict[str, Any]:
    """Read a YAML mapping; ValueError names the file and the problem."""
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: {what} not found") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of keys at the top level")
    return raw


def config_yaml(config) -> str:
    """The validated config as YAML text (every default filled in), e.g. for a report."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
