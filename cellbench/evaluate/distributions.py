"""How far apart two models' outputs are on the same cells: KL of class distributions, MMD.

KL divergence compares predicted class probabilities cell by cell (e.g. one classifier on the
original crops and on masked crops), or per group the proportions of predicted classes (the
background-confound study's Figure 3A); MMD compares two sets of embeddings as distributions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.spatial.distance import pdist
from sklearn.metrics.pairwise import euclidean_distances


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


PROPORTION_KL_COLUMNS = ["group", "n_cells", "kl_of_proportions"]
STUDY_CLIP = 1e-10  # the study's clip of distributions before the log (analyze_lr.ipynb)


def class_proportions(predicted: np.ndarray, classes: Sequence) -> np.ndarray:
    """(K,) share of the cells predicted as each of `classes`, in that order.

    Cells predicted as a class outside `classes` count towards no share.
    """
    predicted = np.asarray(predicted)
    if predicted.size == 0:
        raise ValueError("class_proportions needs at least one predicted cell")
    return np.array([(predicted == c).mean() for c in classes], dtype=np.float64)


def proportion_kl_divergence(
    original: np.ndarray,
    changed: np.ndarray,
    groups: np.ndarray,
    classes: Sequence,
    *,
    eps: float = STUDY_CLIP,
) -> pd.DataFrame:
    """Per group (e.g. protein): KL between the proportions of predicted classes.

    The background-confound study's Figure 3A: for each protein, the share of its cells
    predicted in each localisation class on the original crops (P) and on the masked or
    background-swapped crops (Q); KL(P || Q) in nats. The per-cell variant is `kl_divergence`.

    Parameters
    ----------
    original, changed : (N,) array
        Predicted class of each cell in the two conditions (the same cells, same order).
    groups : (N,) array
        Group of each cell.
    classes : sequence
        The classes the proportions run over (columns of P and Q).
    eps : float
        P and Q are floored at `eps` and renormalised before the log (the study clips at
        1e-10), so a class predicted only on the original crops gives a large, finite KL.

    Returns
    -------
    DataFrame
        `PROPORTION_KL_COLUMNS`, one row per group, sorted by group.

    Examples
    --------
    >>> table = proportion_kl_divergence(
    ...     np.array(["a", "a", "b", "b"]), np.array(["a", "b", "b", "b"]), np.zeros(4), ["a", "b"]
    ... )
    >>> round(float(table["kl_of_proportions"][0]), 4)  # KL([.5, .5] || [.25, .75])
    0.1438
    """
    original, changed, groups = (np.asarray(a) for a in (original, changed, groups))
    if not original.shape == changed.shape == groups.shape or original.ndim != 1:
        raise ValueError(
            "original, changed and groups must be 1-D with one entry per cell; got shapes "
            f"{original.shape}, {changed.shape} and {groups.shape}"
        )
    rows = []
    for group in np.unique(groups):
        cells = groups == group
        p = class_proportions(original[cells], classes)[None]
        q = class_proportions(changed[cells], classes)[None]
        p, q = _smoothed(p, eps), _smoothed(q, eps)
        kl = max(float((p * (np.log(p) - np.log(q))).sum()), 0.0)
        rows.append((group, int(cells.sum()), kl))
    return pd.DataFrame(rows, columns=PROPORTION_KL_COLUMNS)


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


def gaussian_kernel_sum(sqdist: np.ndarray, sigmas: Sequence[float]) -> np.ndarray:
    """Sum over `sigmas` of Gaussian kernels ``exp(-d^2 / (2 sigma^2))`` of squared distances.

    A sum of Gaussian kernels is itself a characteristic kernel (the mixture kernel of
    multi-bandwidth MMD), so MMD^2 with it is the sum of the single-kernel MMD^2 values.
    """
    kernel = np.zeros_like(sqdist, dtype=np.float64)
    for sigma in sigmas:
        kernel += np.exp(-sqdist / (2.0 * float(sigma) ** 2))
    return kernel


def _unbiased_mmd2(
    kernel: np.ndarray, in_x: np.ndarray, in_y: np.ndarray | None = None
) -> np.ndarray:
    """MMD^2_u for each row of weights over the N + M pooled rows; `kernel` has a zero diagonal.

    `in_x` (P, N + M) says how often each pooled row is in x (boolean: a split of the rows;
    counts: a bootstrap resample), `in_y` the same for y (default: the rows not in x). Pairs of
    a row with itself (and its copies in a resample) are left out of the within-set means, so
    a resample of distinct rows gives the usual unbiased estimator.
    """
    a = in_x.astype(np.float64)
    b = 1.0 - a if in_y is None else in_y.astype(np.float64)
    n, m = a.sum(axis=1), b.sum(axis=1)
    ka, kb = a @ kernel, b @ kernel
    with np.errstate(invalid="ignore", divide="ignore"):  # a resample of one distinct row
        xx = (ka * a).sum(axis=1) / (n**2 - (a**2).sum(axis=1))
        yy = (kb * b).sum(axis=1) / (m**2 - (b**2).sum(axis=1))
    xy = (ka * b).sum(axis=1) / (n * m)
    return xx + yy - 2.0 * xy


def _in_chunks(kernel: np.ndarray, in_x: np.ndarray, in_y: np.ndarray | None = None) -> np.ndarray:
    """`_unbiased_mmd2` of many weight rows, 64 at a time (memory: 64 x (N + M) floats)."""
    chunks = -(-len(in_x) // 64)
    if in_y is None:
        return np.concatenate([_unbiased_mmd2(kernel, a) for a in np.array_split(in_x, chunks)])
    pairs = zip(np.array_split(in_x, chunks), np.array_split(in_y, chunks), strict=True)
    return np.concatenate([_unbiased_mmd2(kernel, a, b) for a, b in pairs])


def _subsample(x: np.ndarray, max_cells: int | None, rng: np.random.Generator) -> np.ndarray:
    """At most `max_cells` rows of `x`, drawn without replacement, in their order."""
    if max_cells is None or len(x) <= max_cells:
        return x
    return x[np.sort(rng.choice(len(x), max_cells, replace=False))]


def mmd(
    x: np.ndarray,
    y: np.ndarray,
    *,
    bandwidth: float | None = None,
    multipliers: Sequence[float] = (1.0,),
    n_permutations: int = 0,
    n_bootstrap: int = 0,
    max_cells: int | None = None,
    seed: int = 0,
) -> dict:
    """Maximum mean discrepancy between two sets of embeddings, Gaussian RBF kernel(s).

    Parameters
    ----------
    x : (N, D) array of float
    y : (M, D) array of float
    bandwidth : float, optional
        Kernel width sigma in ``exp(-|a - b|^2 / (2 sigma^2))``, in embedding units. Default:
        the median distance between distinct rows of x and y pooled (median heuristic).
    multipliers : sequence of float
        The kernel is the sum of Gaussian kernels of widths ``bandwidth * multiplier`` (e.g.
        0.5, 1, 1.5, 2); the default, one multiplier of 1, is the single Gaussian kernel.
        MMD^2 of the sum is the sum of each kernel's MMD^2, so it grows with their number.
    n_permutations : int
        If > 0, the p-value of a permutation test that reassigns the pooled rows to x and y:
        ``(1 + #(permuted >= observed)) / (1 + n_permutations)``.
    n_bootstrap : int
        If > 0, x and y are each resampled with replacement this many times; the 2.5 and 97.5
        percentiles of the resampled MMD^2 are the 95% interval. Copies of one row are not
        compared with each other, so the resampled estimates centre on the estimate.
    max_cells : int, optional
        x and y are first subsampled (without replacement) to at most this many rows each:
        the kernel matrix is (N + M)^2 floats.
    seed : int
        Draws the subsample, the permutations and the resamples.

    Returns
    -------
    dict
        JSON-able: ``mmd2`` (unbiased estimate of MMD^2; near 0, possibly slightly negative,
        when x and y come from one distribution), ``bandwidth`` (sigma before the
        multipliers), ``multipliers``, ``n_x``, ``n_y`` (rows used), ``n_permutations``,
        ``p_value`` (None without permutations), ``n_bootstrap``, ``bootstrap_mean``,
        ``ci_low``, ``ci_high`` (None without resamples, or when every resample holds one
        distinct row of x or of y, possible only for tiny sets).

    Notes
    -----
    Memory and time grow with (N + M)^2, times the permutations and resamples (64 at a time).
    Squared distances come from scikit-learn's ``|a|^2 + |b|^2 - 2 a.b`` (one BLAS product,
    about 3x faster than scipy's cdist at 512 dimensions).

    Examples
    --------
    >>> x, y = np.array([[0.0], [1.0]]), np.array([[3.0], [4.0], [4.5]])
    >>> round(mmd(x, y, bandwidth=1.0)["mmd2"], 4)
    1.1577
    """
    x, y = _check_embeddings("x", x), _check_embeddings("y", y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same width; got {x.shape[1]} and {y.shape[1]}")
    multipliers = [float(k) for k in multipliers]
    if not multipliers or min(multipliers) <= 0:
        raise ValueError(f"multipliers must be positive numbers; got {multipliers}")
    if max_cells is not None and max_cells < 2:
        raise ValueError(f"max_cells must be >= 2; got {max_cells}")
    rng = np.random.default_rng(seed)
    x, y = _subsample(x, max_cells, rng), _subsample(y, max_cells, rng)
    pooled = np.concatenate([x, y])
    sigma = median_bandwidth(pooled) if bandwidth is None else float(bandwidth)
    if not sigma > 0:
        raise ValueError(f"bandwidth must be > 0; got {bandwidth}")
    kernel = gaussian_kernel_sum(
        euclidean_distances(pooled, squared=True), [sigma * k for k in multipliers]
    )
    np.fill_diagonal(kernel, 0.0)
    in_x = np.arange(len(pooled)) < len(x)
    observed = float(_unbiased_mmd2(kernel, in_x[None])[0])
    p_value = None
    if n_permutations > 0:
        permuted = rng.permuted(np.tile(in_x, (n_permutations, 1)), axis=1)
        null = _in_chunks(kernel, permuted)
        p_value = float((1 + np.sum(null >= observed)) / (1 + n_permutations))
    resampled = {"bootstrap_mean": None, "ci_low": None, "ci_high": None}
    if n_bootstrap > 0:
        counts_x = rng.multinomial(len(x), np.full(len(x), 1 / len(x)), size=n_bootstrap)
        counts_y = rng.multinomial(len(y), np.full(len(y), 1 / len(y)), size=n_bootstrap)
        zeros_x, zeros_y = np.zeros_like(counts_x), np.zeros_like(counts_y)
        values = _in_chunks(kernel, np.hstack([counts_x, zeros_y]), np.hstack([zeros_x, counts_y]))
        values = values[np.isfinite(values)]  # a resample of one distinct row has no MMD^2_u
        if values.size:
            low, high = np.percentile(values, [2.5, 97.5])
            resampled = {
                "bootstrap_mean": float(values.mean()),
                "ci_low": float(low),
                "ci_high": float(high),
            }
    return {
        "mmd2": observed,
        "bandwidth": sigma,
        "multipliers": multipliers,
        "n_x": len(x),
        "n_y": len(y),
        "n_permutations": int(n_permutations),
        "p_value": p_value,
        "n_bootstrap": int(n_bootstrap),
        **resampled,
    }


MMD_COLUMNS = ["group_a", "group_b", "mmd2", "ci_low", "ci_high", "n_a", "n_b", "sigma"]
MEDIAN_CELLS = 2000  # the shared bandwidth is the median distance among at most this many cells


def group_mmd(
    embeddings: np.ndarray,
    groups: np.ndarray,
    *,
    multipliers: Sequence[float] = (0.5, 1.0, 1.5, 2.0),
    n_bootstrap: int = 20,
    max_cells: int | None = 500,
    seed: int | Sequence[int] = 0,
) -> pd.DataFrame:
    """MMD^2 between the cells of every two groups (e.g. treatments), and within each group.

    Every pair is measured with one kernel, the sum of Gaussian kernels of widths
    ``sigma * multiplier``, sigma being the median distance between the (subsampled) cells of
    all groups pooled; so values compare across pairs. Within a group, its cells are split at
    random into two halves and the halves are compared: the baseline a pair's MMD^2 is read
    against (what one distribution gives at this sample size).

    Parameters
    ----------
    embeddings : (N, D) array of float
    groups : (N,) array
        Group of each cell; groups of fewer than 2 cells are left out (fewer than 4: no
        within-group row).
    multipliers, n_bootstrap : as in `mmd`
    max_cells : int, optional
        Each group is subsampled to at most this many cells, once, for all its pairs.
    seed : int or sequence of int
        Draws the subsamples, the halves and the resamples.

    Returns
    -------
    DataFrame
        `MMD_COLUMNS`: one row per pair of groups (``group_a < group_b``) and one per group
        (``group_a == group_b``, its two halves); ``ci_low``, ``ci_high`` the 95% bootstrap
        interval (NaN without resamples), ``n_a``, ``n_b`` the cells compared, ``sigma`` the
        shared median-heuristic width.
    """
    x = _check_embeddings("embeddings", embeddings)
    groups = np.asarray(groups).astype(str)
    if groups.shape != (len(x),):
        raise ValueError(f"groups must have shape ({len(x)},); got {groups.shape}")
    rng = np.random.default_rng(seed)
    names, counts = np.unique(groups, return_counts=True)
    members = {g: _subsample(x[groups == g], max_cells, rng) for g in names[counts >= 2]}
    if not members:
        return pd.DataFrame(columns=MMD_COLUMNS)
    pooled = np.concatenate(list(members.values()))
    sigma = median_bandwidth(_subsample(pooled, MEDIAN_CELLS, rng))
    settings = {"bandwidth": sigma, "multipliers": multipliers, "n_bootstrap": n_bootstrap}

    def row(a: str, b: str, cells_a: np.ndarray, cells_b: np.ndarray) -> dict:
        result = mmd(cells_a, cells_b, **settings, seed=int(rng.integers(2**32)))
        low, high = (np.nan if result[k] is None else result[k] for k in ("ci_low", "ci_high"))
        n_a, n_b = result["n_x"], result["n_y"]
        return dict(
            zip(MMD_COLUMNS, [a, b, result["mmd2"], low, high, n_a, n_b, sigma], strict=True)
        )

    rows = []
    ordered = sorted(members)
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            rows.append(row(a, b, members[a], members[b]))
    for a in ordered:
        cells = members[a][rng.permutation(len(members[a]))]
        if len(cells) >= 4:
            half = len(cells) // 2
            rows.append(row(a, a, cells[:half], cells[half:]))
    return pd.DataFrame(rows, columns=MMD_COLUMNS)


def mmd_slug(grouping: str) -> str:
    """A grouping of `MMDConfig.groupings` as a name part, e.g. in a figure's file name.

    ``Metadata_Compound+Metadata_Concentration`` -> ``compound_concentration``.
    """
    return "_".join(c.removeprefix("Metadata_").lower() for c in grouping.split("+"))


def mmd_summary(table: pd.DataFrame) -> dict:
    """Mean MMD^2 between different groups and within groups (halves) of a `group_mmd` table.

    Returns
    -------
    dict
        JSON-able: ``mmd2_between``, ``mmd2_within`` (None without such rows), ``mmd_groups``
        (groups compared), ``mmd_sigma``.
    """
    within = table["group_a"] == table["group_b"]
    between, inside = table.loc[~within, "mmd2"], table.loc[within, "mmd2"]
    groups = set(table["group_a"]) | set(table["group_b"])
    return {
        "mmd2_between": float(between.mean()) if len(between) else None,
        "mmd2_within": float(inside.mean()) if len(inside) else None,
        "mmd_groups": len(groups),
        "mmd_sigma": float(table["sigma"].iloc[0]) if len(table) else None,
    }
