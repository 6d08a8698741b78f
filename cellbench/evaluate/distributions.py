"""How far apart two models' outputs are on the same cells: KL of class distributions, MMD.

KL divergence compares predicted class probabilities cell by cell (e.g. one classifier on the
original crops and on masked crops); MMD compares two sets of embeddings as distributions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist, pdist


def _check_probabilities(name: str, probs: np.ndarray) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"{name} must be an (N, K) array of probabilities; got shape {p.shape}")
    if not np.isfinite(p).all() or (p < 0).any():
        raise ValueError(f"{name} holds negative, NaN or infinite values; expected probabilities")
    sums = p.sum(axis=1)
    bad = np.flatnonzero(~np.isclose(sums, 1.0, atol=1e-3))
    if bad.size:
        raise ValueError(
            f"rows of {name} must sum to 1; row {bad[0]} sums to {sums[bad[0]]:.4g} "
            "(apply a softmax to logits first)"
        )
    return p


def _smoothed(p: np.ndarray, eps: float) -> np.ndarray:
    """Probabilities floored at `eps` and renormalised, so that no class has probability 0."""
    p = np.maximum(p, eps)
    return p / p.sum(axis=1, keepdims=True)


def kl_divergence(p: np.ndarray, q: np.ndarray, *, eps: float = 1e-12) -> np.ndarray:
    """KL(p || q) per cell, in nats.

    Parameters
    ----------
    p, q : (N, K) array of float
        Class probabilities of the same N cells from two models (rows sum to 1).
    eps : float
        Both distributions are floored at `eps` and renormalised before the log. Where q is 0
        and p is not, the true KL is infinite; here it is large but finite, about
        ``p * log(p / eps)`` (~27.6 nats per unit of p at the default). Classes where p is 0
        add about ``eps * log(eps / q)``, negligible. Identical rows give exactly 0.

    Returns
    -------
    (N,) array of float
        Non-negative.

    Examples
    --------
    >>> kl_divergence(np.array([[0.5, 0.5]]), np.array([[0.9, 0.1]])).round(4)
    array([0.5108])
    """
    p = _check_probabilities("p", p)
    q = _check_probabilities("q", q)
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape; got {p.shape} and {q.shape}")
    p, q = _smoothed(p, eps), _smoothed(q, eps)
    return np.maximum((p * (np.log(p) - np.log(q))).sum(axis=1), 0.0)


def group_kl_divergence(
    p: np.ndarray, q: np.ndarray, groups: np.ndarray, *, eps: float = 1e-12
) -> pd.DataFrame:
    """Per group of cells (e.g. per protein): KL of the mean distributions, and mean per-cell KL.

    Parameters
    ----------
    p, q : (N, K) array of float
        As in `kl_divergence`.
    groups : (N,) array
        Group of each cell.
    eps : float
        As in `kl_divergence`.

    Returns
    -------
    DataFrame
        One row per group, sorted: ``group``, ``n_cells``, ``kl_of_means`` (KL between the
        group's mean p and mean q), ``mean_cell_kl`` (mean of the per-cell KL).
    """
    per_cell = kl_divergence(p, q, eps=eps)
    groups = np.asarray(groups)
    if groups.shape != per_cell.shape:
        raise ValueError(f"groups must have shape {per_cell.shape}; got {groups.shape}")
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    rows = []
    for group in np.unique(groups):
        cells = groups == group
        mean_p = p[cells].mean(axis=0, keepdims=True)
        mean_q = q[cells].mean(axis=0, keepdims=True)
        of_means = kl_divergence(mean_p, mean_q, eps=eps)[0]
        rows.append((group, int(cells.sum()), float(of_means), float(per_cell[cells].mean())))
    return pd.DataFrame(rows, columns=["group", "n_cells", "kl_of_means", "mean_cell_kl"])


def _check_embeddings(name: str, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"{name} must be an (N, D) array with N >= 2; got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return x


def median_bandwidth(pooled: np.ndarray) -> float:
    """Median heuristic: the median Euclidean distance between distinct rows of (N, D) `pooled`."""
    distances = pdist(pooled)
    bandwidth = float(np.median(distances[distances > 0])) if (distances > 0).any() else 0.0
    if bandwidth == 0.0:
        raise ValueError("all embeddings are identical: the median-heuristic bandwidth is 0")
    return bandwidth


def _unbiased_mmd2(kernel: np.ndarray, in_x: np.ndarray) -> np.ndarray:
    """MMD^2_u for each (P, N + M) boolean row of `in_x`; `kernel` has a zero diagonal."""
    a = in_x.astype(np.float64)
    b = 1.0 - a
    n, m = a[0].sum(), b[0].sum()
    ka, kb = a @ kernel, b @ kernel
    xx = (ka * a).sum(axis=1) / (n * (n - 1))
    yy = (kb * b).sum(axis=1) / (m * (m - 1))
    xy = (ka * b).sum(axis=1) / (n * m)
    return xx + yy - 2.0 * xy


def mmd(
    x: np.ndarray,
    y: np.ndarray,
    *,
    bandwidth: float | None = None,
    n_permutations: int = 0,
    seed: int = 0,
) -> dict:
    """Maximum mean discrepancy between two sets of embeddings, Gaussian RBF kernel.

    Parameters
    ----------
    x : (N, D) array of float
    y : (M, D) array of float
    bandwidth : float, optional
        Kernel width sigma in ``exp(-|a - b|^2 / (2 sigma^2))``, in embedding units. Default:
        the median distance between distinct rows of x and y pooled (median heuristic).
    n_permutations : int
        If > 0, the p-value of a permutation test that reassigns the pooled rows to x and y:
        ``(1 + #(permuted >= observed)) / (1 + n_permutations)``.
    seed : int
        Draws the permutations.

    Returns
    -------
    dict
        JSON-able: ``mmd2`` (unbiased estimate of MMD^2; near 0, possibly slightly negative,
        when x and y come from one distribution), ``bandwidth``, ``n_x``, ``n_y``,
        ``n_permutations``, ``p_value`` (None without permutations).

    Notes
    -----
    Memory and time grow with (N + M)^2, times `n_permutations` for the test.
    """
    x, y = _check_embeddings("x", x), _check_embeddings("y", y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same width; got {x.shape[1]} and {y.shape[1]}")
    pooled = np.concatenate([x, y])
    sigma = median_bandwidth(pooled) if bandwidth is None else float(bandwidth)
    if not sigma > 0:
        raise ValueError(f"bandwidth must be > 0; got {bandwidth}")
    kernel = np.exp(-cdist(pooled, pooled, "sqeuclidean") / (2.0 * sigma**2))
    np.fill_diagonal(kernel, 0.0)
    in_x = np.arange(len(pooled)) < len(x)
    observed = float(_unbiased_mmd2(kernel, in_x[None])[0])
    p_value = None
    if n_permutations > 0:
        rng = np.random.default_rng(seed)
        permuted = rng.permuted(np.tile(in_x, (n_permutations, 1)), axis=1)
        null = np.concatenate(
            [
                _unbiased_mmd2(kernel, chunk)
                for chunk in np.array_split(permuted, -(-len(permuted) // 64))
            ]
        )
        p_value = float((1 + np.sum(null >= observed)) / (1 + n_permutations))
    return {
        "mmd2": observed,
        "bandwidth": sigma,
        "n_x": len(x),
        "n_y": len(y),
        "n_permutations": int(n_permutations),
        "p_value": p_value,
    }
