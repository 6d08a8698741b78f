"""Building blocks of the config schema: strict sections and tagged unions."""

from __future__ import annotations

import functools
import types
import typing
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag

from cellbench.names import NAME_RULE, check_name


def _tag(key: str, default: str | None = None):
    """A union discriminator that reads `key` from a dict or a model, with a default."""

    def read(value: Any) -> str | None:
        if isinstance(value, dict):
            return value.get(key, default)
        return getattr(value, key, default)

    return Discriminator(read)


def union_members(annotation: Any) -> dict[str, Any]:
    """``{tag: member}`` of a tagged union (``Annotated[A, Tag("a")] | ...``); else ``{}``.

    The annotation may be wrapped in ``Annotated[..., Discriminator]`` (a type alias such as
    `cellbench.config.models.ModelConfig`) or be a field's bare union. This is how the list
    of model types, data sources and segmentation methods is read from the schema.

    Examples
    --------
    >>> from cellbench.config.models import ModelConfig
    >>> list(union_members(ModelConfig))[:2]
    ['random_forest', 'svm']
    """
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return {}
    members = {}
    for member in typing.get_args(annotation):
        if typing.get_origin(member) is not Annotated:
            continue
        inner, *metadata = typing.get_args(member)
        members.update({mark.tag: inner for mark in metadata if isinstance(mark, Tag)})
    return members


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
