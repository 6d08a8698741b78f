"""Running stages: the only package that knows how tasks are dispatched (local, debug, SLURM).

Executors, one module each with the same four functions (`cellbench.execution.base`):
``local`` (a bounded process pool on this machine), ``debug`` (every task in this process, one
after the other) and ``slurm`` (one submitit job array per stage). To add a scheduler, write
its module and add its name here.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from cellbench.errors import CellbenchError

_EXECUTORS = {"slurm": "slurm", "local": "local", "debug": "debug"}  # auto tries them in order
EXECUTORS = ("auto", *_EXECUTORS)


def executor(name: str) -> ModuleType:
    """The module of an executor (imported on first use: submitit only when asked for)."""
    if name not in _EXECUTORS:
        raise CellbenchError(f"unknown executor {name!r}; executors: {', '.join(EXECUTORS)}")
    return importlib.import_module(f"cellbench.execution.{_EXECUTORS[name]}")


def executor_names() -> list[str]:
    """Every executor's name, in the order ``auto`` tries them."""
    return list(_EXECUTORS)
