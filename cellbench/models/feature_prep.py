"""The nucleocentric study's feature preparation: per-well z-scores and correlation pruning.

- `zscore_per_group`: each well's cells standardised with that well's own mean and SD, as
  scikit-learn's `StandardScaler` fitted on the well alone would (population SD, a constant
  column becomes 0, NaN ignored and kept). It removes plate and well effects (staining,
  illumination) at the price of every well's own composition: a well of one cell type is
  centred on that type. The study z-scores per well before its random forest.
- `CorrelationFilter`: a scikit-learn transformer that keeps, of every pair of columns whose
  absolute Pearson correlation on the training cells exceeds a threshold (the study's 0.95),
  exactly one: columns are visited in order and a column is kept unless it is correlated
  with a column already kept. (The usual pandas recipe, dropping every column correlated
  with *any* earlier column, also drops ``c`` in a chain ``a ~ b ~ c`` where ``a`` and ``c``
  are not correlated; this one keeps ``a`` and ``c``.)

Examples
--------
>>> x = np.array([[1.0, 2.0, 0.0], [2.0, 4.1, 1.0], [3.0, 6.0, 0.0]])
>>> CorrelationFilter(threshold=0.95).fit(x).kept_.tolist()
[0, 2]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data


def zscore_per_group(features: np.ndarray, groups: np.ndarray | pd.Series) -> np.ndarray:
    """Standardise the rows of each group with the group's own column means and SDs.

    Parameters
    ----------
    features : (N, F) ndarray
        NaN (and ±inf, treated as NaN) are left out of the statistics and stay NaN.
    groups : (N,) array-like
        Group of each row (e.g. ``plate/well``).

    Returns
    -------
    (N, F) float64 ndarray
        ``(x - mean) / sd`` per group and column; SD 0 (a constant column, a one-cell group)
        counts as 1, so such values become 0, as with `StandardScaler`. A column is constant
        by `StandardScaler`'s test (its variance within rounding of its mean), so a constant
        0.1 in a group of 3 is 0, not the ±1 that rounding error over a ~1e-17 SD would give.
    """
    x = np.asarray(features, dtype=np.float64)
    x = np.where(np.isfinite(x), x, np.nan)
    frame = pd.DataFrame(x)
    grouped = frame.groupby(np.asarray(groups), sort=False)
    means = grouped.transform("mean").to_numpy()
    sds = grouped.transform(lambda column: column.std(ddof=0)).to_numpy()
    counts = grouped.transform("count").to_numpy()
    eps = np.finfo(np.float64).eps  # scikit-learn's _is_constant_feature
    constant = sds**2 <= counts * eps * sds**2 + (counts * means * eps) ** 2
    z = (x - means) / np.where((sds > 0) & np.isfinite(sds) & ~constant, sds, 1.0)
    return np.where(constant & np.isfinite(z), 0.0, z)


def kept_columns(x: np.ndarray, threshold: float) -> np.ndarray:
    """Indices of the columns `CorrelationFilter` keeps (see the module docstring).

    Undefined values are filled with the column median first; a constant column has no
    correlation with any other and is kept.
    """
    x = np.where(np.isfinite(x), x, np.nan)
    medians = np.nanmedian(np.where(np.isnan(x).all(axis=0), 0.0, x), axis=0)
    filled = np.where(np.isnan(x), medians, x)
    centred = filled - filled.mean(axis=0)
    norms = np.linalg.norm(centred, axis=0)
    safe = np.where(norms > 0, norms, 1.0)
    r = np.abs((centred / safe).T @ (centred / safe))
    r[:, norms == 0] = 0.0
    r[norms == 0, :] = 0.0
    kept: list[int] = []
    for column in range(x.shape[1]):
        if not kept or r[column, kept].max() <= threshold:
            kept.append(column)
    return np.asarray(kept, dtype=np.int64)


class CorrelationFilter(TransformerMixin, BaseEstimator):
    """Keep one column of every pair correlated above `threshold` (|Pearson r|) in `fit`.

    Parameters
    ----------
    threshold : float
        In (0, 1]; the study's 0.95.

    Attributes
    ----------
    kept_ : (K,) ndarray of int
        The columns kept, in order.
    """

    def __init__(self, threshold: float = 0.95):
        self.threshold = threshold

    def fit(self, X, y=None):
        """Learn which columns to keep from the training cells ``X``."""
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold must lie in (0, 1], got {self.threshold!r}")
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        self.kept_ = kept_columns(X, self.threshold)
        return self

    def transform(self, X):
        """The kept columns of ``X``."""
        check_is_fitted(self, "kept_")
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=False)
        return X[:, self.kept_]
