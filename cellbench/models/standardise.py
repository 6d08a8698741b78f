"""Fill undefined features with the training medians, then standardise: one recipe for all.

Every model that reads handcrafted features (the fusion block of the classical models, the
MLP, the CP2Image generator) and the report's handcrafted representation prepare them the
same way: per column, learned on the training cells only,

- NaN and ±inf become the column's median (0 for a column that is NaN throughout);
- the filled column is centred on its mean and divided by its SD (1 where constant).

Examples
--------
>>> stats = fit_standardisation(np.array([[0.0, 1.0], [2.0, np.nan], [4.0, 3.0]]))
>>> stats.apply(np.array([[np.nan, 2.0]]))
array([[0., 0.]])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Standardisation:
    """Per-column statistics of training features.

    Attributes
    ----------
    medians : (F,) float64 ndarray
        Fill values of undefined features (0 for a column without any value).
    means : (F,) float64 ndarray
        Means of the filled columns.
    scales : (F,) float64 ndarray
        SDs of the filled columns, 1 where a column is constant.
    """

    medians: np.ndarray
    means: np.ndarray
    scales: np.ndarray

    def apply(self, features: np.ndarray) -> np.ndarray:
        """(N, F) features -> (N, F) float64: undefined values filled, then standardised."""
        filled = np.where(np.isfinite(features), features, self.medians)
        return (filled - self.means) / self.scales


def fit_standardisation(features: np.ndarray) -> Standardisation:
    """The `Standardisation` of (N, F) training features (NaN and ±inf count as undefined).

    No training cell (N = 0) gives medians and means 0 and scales 1.
    """
    x = infinite_as_nan(np.asarray(features, dtype=np.float64))
    medians = np.zeros(x.shape[1])
    if len(x) == 0:
        return Standardisation(medians, np.zeros(x.shape[1]), np.ones(x.shape[1]))
    observed = ~np.isnan(x).all(axis=0)
    medians[observed] = np.nanmedian(x[:, observed], axis=0)
    filled = np.where(np.isnan(x), medians, x)
    sd = filled.std(axis=0)
    return Standardisation(medians, filled.mean(axis=0), np.where(sd > 0, sd, 1.0))


def infinite_as_nan(X):
    """``X`` (array-like) with ±inf replaced by NaN; ``X`` itself when it has none."""
    array = np.asarray(X)
    if array.dtype.kind != "f" or not np.isinf(array).any():
        return X
    return np.where(np.isinf(array), np.nan, array)
