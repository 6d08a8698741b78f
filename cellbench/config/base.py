"""Building blocks of the config schema: strict sections and tagged unions."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Discriminator


def _tag(key: str, default: str | None = None):
    """A union discriminator that reads `key` from a dict or a model, with a default."""

    def read(value: Any) -> str | None:
        if isinstance(value, dict):
            return value.get(key, default)
        return getattr(value, key, default)

    return Discriminator(read)


class StrictModel(BaseModel):
    """A config section: unknown keys are errors, values are checked on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


# --- data sources -----------------------------------------------------------------------------
