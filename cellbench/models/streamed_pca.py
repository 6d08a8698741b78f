"""Incremental PCA on crops read in chunks: the perturbation study's memory-bounded baseline.

The study (S4 of the reference inventory) flattens 64 px RGB crops to 12,288 values per cell
and fits ``IncrementalPCA(100, batch_size=256)`` before a logistic regression. Here a model
with ``pca_method: incremental`` never holds the flattened crops of all its cells: the crops
(`cellbench.models.crop_rows.CropRows`, read lazily from the crop stores) are read
``pca_batch_size`` cells at a time, and each chunk goes through

    StandardScaler.partial_fit   (pass 1 over the training cells)
    IncrementalPCA.partial_fit   (pass 2, on the scaled chunk)
    transform                    (pass 3, every cell: only the (N, components) scores stay)

Then the classifier is fitted on the scores, beside the model's standardised feature columns
when it reads ``fusion`` (the study's c11: crops-PCA plus three standardised CellProfiler
features; the PCA covers the crop block only). The fitted steps are kept as one scikit-learn
`Pipeline` (``scale``, ``pca``, ``features``, ``classify``), saved with skops like every
classical model, but fitted and applied step by step here, never by ``Pipeline.fit``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
from sklearn.decomposition import IncrementalPCA
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from cellbench.errors import CellbenchError
from cellbench.models.crop_pixels import flatten_crops

if TYPE_CHECKING:
    from sklearn.base import ClassifierMixin

    from cellbench.models.crop_rows import CropRows


def chunk_positions(n_cells: int, batch_size: int, smallest: int = 1) -> list[np.ndarray]:
    """Positions ``0..n_cells-1`` in chunks of `batch_size`, the last merged if small.

    A last chunk under `smallest` cells joins the one before: IncrementalPCA's
    ``partial_fit`` needs at least as many cells as components.
    """
    starts = list(range(0, n_cells, batch_size))
    chunks = [np.arange(s, min(s + batch_size, n_cells)) for s in starts]
    if len(chunks) > 1 and len(chunks[-1]) < smallest:
        chunks[-2:] = [np.concatenate(chunks[-2:])]
    return chunks


def crop_chunks(
    crops: CropRows, size_px: int, batch_size: int, smallest: int = 1
) -> Iterator[np.ndarray]:
    """Flattened crops, (k, C * S * S) float32, `batch_size` cells at a time, read one by one."""
    for positions in chunk_positions(len(crops), batch_size, smallest):
        pixels = flatten_crops(crops.subset(positions).to_array(), size_px)
        if not np.isfinite(pixels).all():
            raise CellbenchError(
                "crops hold NaN or inf pixels; pca_method: incremental does not impute crops "
                "(use pca_method: full)"
            )
        yield pixels


def fit_streamed(
    crops: CropRows,
    features: np.ndarray | None,
    labels: np.ndarray,
    classifier: ClassifierMixin,
    features_step,
    *,
    size_px: int,
    n_components: int,
    batch_size: int,
) -> Pipeline:
    """Fit scaler, IncrementalPCA and classifier on the training cells' crops, chunk by chunk.

    Parameters
    ----------
    crops : CropRows
        The training cells' crops (unread).
    features : (N, F) ndarray or None
        Their feature columns (fusion), standardised by `features_step`; None: crops only.
    labels : (N,) ndarray
    classifier : the unfitted classifier
    features_step : transformer or "passthrough"
        Imputes and standardises `features` on the training cells (``BlockStandardiser``).
    size_px, n_components, batch_size : int
        Crop side, PCA components kept, cells per chunk (IncrementalPCA is deterministic:
        no seed).

    Returns
    -------
    Pipeline
        Steps ``scale``, ``pca``, ``features``, ``classify``, all fitted.
    """
    scale = StandardScaler()
    for chunk in crop_chunks(crops, size_px, batch_size):
        scale.partial_fit(chunk)
    pca = IncrementalPCA(n_components=n_components, batch_size=batch_size)
    for chunk in crop_chunks(crops, size_px, batch_size, smallest=n_components):
        pca.partial_fit(scale.transform(chunk))
    model = Pipeline(
        [("scale", scale), ("pca", pca), ("features", features_step), ("classify", classifier)]
    )
    if features is not None:
        features_step.fit(features)
    classifier.fit(streamed_inputs(model, crops, features, size_px, batch_size), labels)
    return model


def streamed_inputs(
    model: Pipeline,
    crops: CropRows,
    features: np.ndarray | None,
    size_px: int,
    batch_size: int,
) -> np.ndarray:
    """What the classifier reads: (N, components [+ F]) PCA scores [and standardised features].

    The crops are read and projected in chunks; only the scores are kept.
    """
    scale, pca, features_step = (model.named_steps[k] for k in ("scale", "pca", "features"))
    scores = np.empty((len(crops), pca.n_components_), dtype=np.float64)
    start = 0
    for chunk in crop_chunks(crops, size_px, batch_size):
        scores[start : start + len(chunk)] = pca.transform(scale.transform(chunk))
        start += len(chunk)
    if features is None:
        return scores
    return np.hstack([scores, features_step.transform(features)])


def predict_streamed(
    model: Pipeline,
    crops: CropRows,
    features: np.ndarray | None,
    *,
    size_px: int,
    batch_size: int,
    probabilities: bool,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Classes (and probabilities where asked) of every cell, its crops read in chunks."""
    inputs = streamed_inputs(model, crops, features, size_px, batch_size)
    classify = model.named_steps["classify"]
    return classify.predict(inputs), classify.predict_proba(inputs) if probabilities else None
