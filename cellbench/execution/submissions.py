"""Records of submitted jobs: `_submissions/<stage>.json`, the job id and logs of each task.

Written by a scheduler's executor when it submits, read by ``--status`` and ``--wait``. The
last submission of a task replaces the one before.
"""

from __future__ import annotations

from typing import Any

from cellbench.config import Config
from cellbench.io.atomic import write_json
from cellbench.paths import ResultsPaths
from cellbench.status import read_status


def read_submissions(config: Config, stage: str) -> dict[str, dict[str, Any]]:
    """The last submission of every task of a stage: job id, log paths, parameters."""
    return read_status(ResultsPaths(config.results_root).submission_file(stage)) or {}


def record_submissions(config: Config, stage: str, entries: dict[str, dict[str, Any]]) -> None:
    """Add (or replace) the submissions of some tasks of a stage."""
    record = read_submissions(config, stage)
    record.update(entries)
    write_json(ResultsPaths(config.results_root).submission_file(stage), record)
