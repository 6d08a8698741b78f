"""Fixtures shared across the test suite."""

from __future__ import annotations

import pytest

from cellbench.data.plates import open_plate
from tests.helpers import small_config


@pytest.fixture(scope="session")
def segmented_plate(tmp_path_factory):
    """A small synthetic plate, generated and segmented once for the whole session."""
    from cellbench.tasks import run_task

    config = small_config(tmp_path_factory.mktemp("segmented"))
    result = run_task(config, "segment", "P1")
    assert result.state == "done", result.message
    return config, open_plate(config, "P1")
