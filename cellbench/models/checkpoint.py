"""Training checkpoints: the global random state and the settings-checked save and load.

A checkpoint records the settings hash it was made with (`load_checkpoint` ignores one made
with other settings) and the torch random state (`rng_state` / `set_rng_state`), so a resumed
run continues exactly where the interrupted one stopped. Writes are atomic; reads use
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from cellbench.io.atomic import atomic_path
from cellbench.models.persist import load_torch

log = logging.getLogger(__name__)


def rng_state() -> dict:
    """The global torch random state (CPU and, where present, CUDA), for a checkpoint."""
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state) -> None:
    """Restore a state from `rng_state` (or a bare CPU state from older checkpoints)."""
    if isinstance(state, torch.Tensor):
        torch.set_rng_state(state)
        return
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, settings_hash: str, payload: dict) -> None:
    """Write `payload`, the settings hash and the random state to `path`, atomically.

    A kill mid-save leaves the previous checkpoint intact.
    """
    payload = {**payload, "settings_hash": settings_hash, "rng": rng_state()}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Path, settings_hash: str) -> dict | None:
    """The checkpoint at `path` if it was made with the same settings, else None."""
    if not path.exists():
        return None
    saved = load_torch(path)  # weights_only: tensors and plain data, never code
    if saved.get("settings_hash") != settings_hash:
        log.warning("ignoring %s: made with other settings", path)
        return None
    return saved
