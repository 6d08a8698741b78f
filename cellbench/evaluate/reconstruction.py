"""How well a generative model reproduces crops: pixel error, SSIM and feature correlation."""

from __future__ import annotations

import numpy as np
import pandas as pd
from skimage.metrics import structural_similarity


def _check_image_pair(original: np.ndarray, reconstructed: np.ndarray) -> tuple[np.ndarray, ...]:
    original, reconstructed = np.asarray(original), np.asarray(reconstructed)
    if original.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W) arrays; got shape {original.shape}")
    if original.shape != reconstructed.shape:
        raise ValueError(
            "original and reconstructed must have the same shape; "
            f"got {original.shape} and {reconstructed.shape}"
        )
    return original.astype(np.float64), reconstructed.astype(np.float64)


def reconstruction_mse(original: np.ndarray, reconstructed: np.ndarray) -> np.ndarray:
    """Mean squared error per image.

    Parameters
    ----------
    original, reconstructed : (N, C, H, W) array
        Same intensity scale in both.

    Returns
    -------
    (N,) array of float
        Mean over channels and pixels, in squared intensity units.
    """
    original, reconstructed = _check_image_pair(original, reconstructed)
    return ((original - reconstructed) ** 2).mean(axis=(1, 2, 3))


def reconstruction_ssim(
    original: np.ndarray, reconstructed: np.ndarray, *, data_range: float
) -> np.ndarray:
    """Structural similarity per image (scikit-image, mean over channels).

    Parameters
    ----------
    original, reconstructed : (N, C, H, W) array
        H and W at least 7 (the SSIM window).
    data_range : float
        Span of possible intensities, e.g. 1.0 for images scaled to [0, 1], 65535 for uint16.
        Explicit because inferring it from each image makes scores incomparable.

    Returns
    -------
    (N,) array of float
        1 for identical images.

    Examples
    --------
    >>> x = np.random.default_rng(0).random((2, 3, 16, 16))
    >>> reconstruction_ssim(x, x, data_range=1.0)
    array([1., 1.])
    """
    original, reconstructed = _check_image_pair(original, reconstructed)
    if not data_range > 0:
        raise ValueError(f"data_range must be > 0; got {data_range}")
    return np.array(
        [
            structural_similarity(a, b, data_range=data_range, channel_axis=0)
            for a, b in zip(original, reconstructed, strict=True)
        ]
    )


def _as_feature_frame(name: str, features: pd.DataFrame | np.ndarray) -> pd.DataFrame:
    if isinstance(features, pd.DataFrame):
        return features.reset_index(drop=True)
    array = np.asarray(features)
    if array.ndim != 2:
        raise ValueError(f"{name} must be an (N, F) array or a DataFrame; got shape {array.shape}")
    return pd.DataFrame(array)


def _aligned_features(
    measured: pd.DataFrame | np.ndarray, target: pd.DataFrame | np.ndarray
) -> tuple[np.ndarray, np.ndarray, list]:
    measured = _as_feature_frame("measured", measured)
    target = _as_feature_frame("target", target)
    missing = [c for c in measured.columns if c not in target.columns]
    extra = [c for c in target.columns if c not in measured.columns]
    if missing or extra:
        raise ValueError(
            f"measured and target must have the same feature columns; only in measured: "
            f"{missing[:5]}, only in target: {extra[:5]}"
        )
    if len(measured) != len(target):
        raise ValueError(
            f"measured and target must have one row per cell, in the same order; "
            f"got {len(measured)} and {len(target)} rows"
        )
    columns = list(measured.columns)
    return (
        measured[columns].to_numpy(dtype=np.float64, na_value=np.nan),
        target[columns].to_numpy(dtype=np.float64, na_value=np.nan),
        columns,
    )


def _constant(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(F,) True where a column takes a single value over its valid cells (or has none)."""
    top = np.where(valid, values, -np.inf).max(axis=0)
    bottom = np.where(valid, values, np.inf).min(axis=0)
    return ~(top > bottom)


def feature_correlations(
    measured: pd.DataFrame | np.ndarray, target: pd.DataFrame | np.ndarray
) -> pd.DataFrame:
    """Pearson r per feature across cells: features measured on generated crops vs. their inputs.

    The target features are those the crops were generated from.

    Parameters
    ----------
    measured, target : (N, F) DataFrame or array
        Row i of both is cell i. DataFrames must hold the same columns (any order); arrays the
        same shape. Values must be numeric.

    Returns
    -------
    DataFrame
        One row per feature, in `measured`'s column order: ``feature``, ``pearson_r``,
        ``n_cells`` (cells where both values are finite). ``pearson_r`` is NaN when fewer than
        2 such cells remain or either side is constant over them.
    """
    a, b, columns = _aligned_features(measured, target)
    valid = np.isfinite(a) & np.isfinite(b)
    n = valid.sum(axis=0)
    a, b = np.where(valid, a, 0.0), np.where(valid, b, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        da = np.where(valid, a - a.sum(axis=0) / n, 0.0)
        db = np.where(valid, b - b.sum(axis=0) / n, 0.0)
        r = (da * db).sum(axis=0) / np.sqrt((da**2).sum(axis=0) * (db**2).sum(axis=0))
    defined = (n >= 2) & ~_constant(a, valid) & ~_constant(b, valid)
    r = np.where(defined, np.clip(r, -1.0, 1.0), np.nan)
    return pd.DataFrame({"feature": columns, "pearson_r": r, "n_cells": n})


def feature_correlation_summary(
    measured: pd.DataFrame | np.ndarray, target: pd.DataFrame | np.ndarray
) -> dict:
    """Mean Pearson r over features, with the per-feature values; JSON-able.

    Returns
    -------
    dict
        ``mean_pearson_r`` (mean over features where r is defined; None if none is),
        ``n_features``, ``n_defined``, ``per_feature`` {feature: r or None}.
    """
    table = feature_correlations(measured, target)
    defined = table["pearson_r"].dropna()
    return {
        "mean_pearson_r": float(defined.mean()) if len(defined) else None,
        "n_features": len(table),
        "n_defined": len(defined),
        "per_feature": {
            str(f): (None if np.isnan(r) else float(r))
            for f, r in zip(table["feature"], table["pearson_r"], strict=True)
        },
    }
