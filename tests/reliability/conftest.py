"""Fixtures of the reliability tests: small file systems that fill up or refuse writes."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cellbench.data.synthetic import write_plate


def _mount_tmpfs(folder: Path, size_kb: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


def _unmount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 40 KB tmpfs: room for status files, not for a label store (80 KB here)."""
    folder = tmp_path / "small_disk"
    _mount_tmpfs(folder, 40)
    yield folder
    _unmount(folder)


@pytest.fixture
def read_only_root(tmp_path) -> Iterator[Path]:
    """An empty tmpfs remounted read-only."""
    folder = tmp_path / "read_only"
    _mount_tmpfs(folder, 1024)
    done = subprocess.run(
        ["mount", "-o", "remount,ro", str(folder)], capture_output=True, text=True, timeout=30
    )
    if done.returncode != 0:
        _unmount(folder)
        pytest.skip(f"cannot remount read-only: {done.stderr.strip()}")
    yield folder
    _unmount(folder)


@pytest.fixture(scope="session")
def plate_folder(tmp_path_factory) -> Path:
    """A folder of one small synthetic plate (2 x 3 wells, 1 site, 160 px) outside any root."""
    root = tmp_path_factory.mktemp("plates")
    write_plate(
        root / "P1",
        plate="P1",
        rows="AB",
        columns=(1, 2, 3),
        sites=1,
        field_shape=(160, 160),
        cells_per_field=15,
        seed=5,
    )
    return root


def fields_experiment(results_root: Path, plates_root: Path) -> dict:
    """A config dict reading the plates under `plates_root`, writing under `results_root`."""
    return {
        "name": "reliability",
        "results_root": str(results_root),
        "data": {"input": {"source": "fields", "root": str(plates_root)}},
        "crops": {"kinds": {"whole_cell": {"size_px": 48}}},
        "models": [{"name": "rf", "type": "random_forest", "n_estimators": 20}],
        "seeds": [0],
        "execution": {"local_workers": 1},
    }
