"""Mixed precision of the training loop: autocast and, for fp16, gradient scaling (CUDA only).

``precision`` of a model entry (`cellbench.config.TrainingConfig`): ``fp32`` (the default:
results as without mixed precision), ``bf16`` (the forward pass in bfloat16 where PyTorch's
autocast deems it safe; no scaling needed) or ``fp16`` (float16 with a `GradScaler` against
gradients that underflow). On the CPU every setting trains in float32: autocast and scaling
are then switched off, so CPU results never depend on it.
"""

from __future__ import annotations

import contextlib

import torch

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The context of a forward pass and loss: ``torch.autocast`` on CUDA, else nothing."""
    dtype = _dtype(precision)
    if device.type != "cuda" or dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=dtype)


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """A `GradScaler`, enabled for fp16 on CUDA only (disabled, it passes losses through)."""
    enabled = device.type == "cuda" and _dtype(precision) is torch.float16
    return torch.amp.GradScaler("cuda", enabled=enabled)


def _dtype(precision: str) -> torch.dtype | None:
    if precision not in DTYPES:
        raise ValueError(f"precision must be one of {sorted(DTYPES)}, got {precision!r}")
    return DTYPES[precision]
