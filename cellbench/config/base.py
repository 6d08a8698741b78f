"""Building blocks of the config schema: strict sections and tagged unions."""

from __future__ import annotations

import functools
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field

from cellbench.names import NAME_RULE, check_name


def _tag(key: str, default: str | None = None):
    """A union discriminator that reads `key` from a dict or a model, with a default."""

    def read(value: Any) -> str | None:
        if isinstance(value, dict):
            return value.get(key, default)
        return getattr(value, key, default)

    return Discriminator(read)


def name_type(kind: str) -> Any:
    """A str that becomes a path, checked by `cellbench.names.check_name` (`kind` names it).

    Examples
    --------
    >>> PlateName = name_type("plate")
    """
    return Annotated[
        str, AfterValidator(functools.partial(check_name, kind)), Field(description=NAME_RULE)
    ]


class StrictModel(BaseModel):
    """A config section: unknown keys are errors, values are checked on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


# --- data sources -----------------------------------------------------------------------------
