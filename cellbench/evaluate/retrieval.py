"""Retrieval of same-class cells by embedding: mean average precision and silhouette.

Mean average precision (mAP) follows copairs (https://github.com/cytomining/copairs) called
with ``pos_sameby=[class]``, ``neg_diffby=[class]`` and ``distance="cosine"``: each sample is a
query, every other sample is ranked by cosine similarity to it, the samples of the query's class
are the positives. AP of a query is the mean, over its positives, of the precision at the rank of
each. mAP of a class is the mean AP of its queries.

Significance is copairs' too. The null AP of a query with ``k`` positives among ``n`` ranked
samples comes from ``null_size`` random rankings; one null per distinct ``(k, n)``, seeded from
`seed` in sorted ``(k, n)`` order as copairs does, in the same float32 arithmetic, so p-values
equal copairs' when its cache (``~/.copairs``) is empty. Per query:
``p = (1 + #(null >= AP)) / (1 + null_size)``. Per class, the null of the mAP is the element-wise
mean of its queries' null samples and ``p = (1 + #(null > mAP)) / (1 + null_size)`` (strictly
greater, as copairs); q-values are Benjamini-Hochberg over classes.

Ties in similarity rank positives first, as copairs' stable sort does. copairs stores
similarities as float32, here float64: near-ties (< ~1e-7 apart) may rank in the other order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import false_discovery_control
from sklearn.metrics import silhouette_score

_BLOCK_ELEMENTS = 2**22  # similarities held at once while ranking, about 32 MB of float64


def unit_rows(embeddings: np.ndarray) -> np.ndarray:
    """Embeddings scaled to unit length, checked: (N, D) finite, no all-zero row."""
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be an (N, D) array; got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("embeddings hold NaN or infinite values; drop or impute those rows")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    zero = np.flatnonzero(norms[:, 0] == 0)
    if zero.size:
        raise ValueError(
            f"embeddings rows {zero[:5].tolist()} are all zero: cosine similarity is undefined"
        )
    return x / norms


def _check_labels(labels: np.ndarray, n: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) to match embeddings; got {labels.shape}")
    if pd.isna(labels).any():
        raise ValueError("labels hold missing values; every sample needs a class")
    return labels


def _block_average_precision(unit: np.ndarray, codes: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """AP of the queries `rows` against all samples; the query itself is ranked last, unused."""
    n = len(codes)
    diagonal = (np.arange(len(rows)), rows)
    sims = unit[rows] @ unit.T
    relevant = codes[rows, None] == codes[None, :]
    sims[diagonal] = -np.inf
    relevant[diagonal] = False
    order = np.lexsort((~relevant, -sims), axis=-1)
    rel = np.take_along_axis(relevant, order, axis=1)
    precision = np.cumsum(rel, axis=1) / np.arange(1, n + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (precision * rel).sum(axis=1) / rel.sum(axis=1)


def average_precision(embeddings: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Average precision of every sample retrieving the other samples of its class.

    Parameters
    ----------
    embeddings : (N, D) array of float
    labels : (N,) array
        Class of each sample.

    Returns
    -------
    DataFrame
        One row per sample, in input order: ``label``, ``average_precision`` (NaN for a sample
        alone in its class), ``n_pos_pairs`` (other samples of its class), ``n_total_pairs``
        (N - 1).

    Examples
    --------
    >>> x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.8, 0.6]])
    >>> average_precision(x, ["a", "a", "b", "b"])["average_precision"].round(3).tolist()
    [1.0, 1.0, 1.0, 0.333]
    """
    unit = unit_rows(embeddings)
    labels = _check_labels(labels, len(unit))
    n = len(labels)
    if n < 2:
        raise ValueError(f"average precision needs at least 2 samples; got {n}")
    codes = np.unique(labels, return_inverse=True)[1].ravel()
    ap = np.empty(n)
    block = max(1, _BLOCK_ELEMENTS // n)
    for start in range(0, n, block):
        rows = np.arange(start, min(start + block, n))
        ap[rows] = _block_average_precision(unit, codes, rows)
    return pd.DataFrame(
        {
            "label": labels,
            "average_precision": ap,
            "n_pos_pairs": np.bincount(codes)[codes] - 1,
            "n_total_pairs": n - 1,
        }
    )


def null_average_precision(n_pos: int, n_total: int, null_size: int, seed: int) -> np.ndarray:
    """AP of `null_size` random rankings of `n_pos` positives among `n_total`: (null_size,) float32.

    Same draws and arithmetic as copairs' ``compute.random_ap``; memory ~ 2 * null_size * n_total
    bytes.
    """
    n_pos, n_total = int(n_pos), int(n_total)
    rng = np.random.default_rng(seed)
    dtype = np.uint16 if n_total < 2**16 else np.uint32
    ranks = np.tile(np.arange(n_total, dtype=dtype), (null_size, 1))
    rng.permuted(ranks, axis=1, out=ranks)
    ranks = np.sort(ranks[:, :n_pos], axis=1)
    precision = np.arange(1, n_pos + 1, dtype=np.float32) / (ranks + 1)
    return (precision.sum(axis=1) / n_pos).astype(np.float32)


def null_distributions(configs: np.ndarray, null_size: int, seed: int) -> np.ndarray:
    """Null AP samples for each ``(n_pos, n_total)`` row of `configs`: (M, null_size) float32.

    `configs` must be sorted and unique (``np.unique(..., axis=0)``) to get copairs' seeds.
    """
    seeds = np.random.default_rng(seed).integers(8096, size=len(configs))
    nulls = np.empty((len(configs), null_size), dtype=np.float32)
    for i, ((n_pos, n_total), conf_seed) in enumerate(zip(configs, seeds, strict=True)):
        nulls[i] = null_average_precision(n_pos, n_total, null_size, conf_seed)
    return nulls


def _scored_configs(ap_table: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Queries with positives (reindexed), their sorted unique configs and each one's config."""
    scored = ap_table[ap_table["average_precision"].notna() & (ap_table["n_pos_pairs"] > 0)]
    scored = scored.reset_index(drop=True)
    pairs = scored[["n_pos_pairs", "n_total_pairs"]].to_numpy()
    configs, inverse = np.unique(pairs.reshape(-1, 2), axis=0, return_inverse=True)
    return scored, configs, inverse.ravel()


def average_precision_p_values(
    ap_table: pd.DataFrame, *, null_size: int = 10_000, seed: int = 0
) -> np.ndarray:
    """Per-query p-values of AP, ``(1 + #(null >= AP)) / (1 + null_size)``; NaN without positives.

    Parameters
    ----------
    ap_table : DataFrame
        From `average_precision`.

    Returns
    -------
    (N,) array of float, in the rows' order.
    """
    mask = (ap_table["average_precision"].notna() & (ap_table["n_pos_pairs"] > 0)).to_numpy()
    scored, configs, conf_of = _scored_configs(ap_table)
    nulls = np.sort(null_distributions(configs, null_size, seed), axis=1)
    ap = scored["average_precision"].to_numpy(dtype=np.float64)
    counts = np.empty(len(ap))
    for i in range(len(configs)):
        chosen = conf_of == i
        counts[chosen] = null_size - np.searchsorted(nulls[i], ap[chosen])
    p_values = np.full(len(ap_table), np.nan)
    p_values[mask] = (counts + 1) / (null_size + 1)
    return p_values


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values (statsmodels' ``fdr_bh``) of (M,) p-values, in input order.

    scipy's ``false_discovery_control``; kept as a name so callers and tests need not change.
    """
    return false_discovery_control(np.asarray(p_values, dtype=np.float64), method="bh")


def mean_average_precision(
    ap_table: pd.DataFrame, *, null_size: int = 10_000, seed: int = 0, threshold: float = 0.05
) -> pd.DataFrame:
    """Mean average precision per class, with copairs' permutation p-value and BH q-value.

    Parameters
    ----------
    ap_table : DataFrame
        From `average_precision`; queries without positives are left out.
    null_size : int
        Random rankings per ``(n_pos, n_total)`` configuration.
    seed : int
    threshold : float
        Significance level for ``below_p`` and ``below_corrected_p``.

    Returns
    -------
    DataFrame
        One row per class, sorted: ``label``, ``mean_average_precision``, ``n_queries``,
        ``p_value``, ``corrected_p_value``, ``below_p``, ``below_corrected_p``.
    """
    scored, configs, conf_of = _scored_configs(ap_table)
    nulls = null_distributions(configs, null_size, seed)
    rows = []
    for label, group in scored.groupby("label", sort=True):
        value = group["average_precision"].mean()
        null = nulls[conf_of[group.index]].mean(axis=0)
        exceed = int((null > np.float32(value)).sum())
        rows.append((label, value, len(group), (exceed + 1) / (null_size + 1)))
    table = pd.DataFrame(rows, columns=["label", "mean_average_precision", "n_queries", "p_value"])
    table["corrected_p_value"] = benjamini_hochberg(table["p_value"].to_numpy())
    table["below_p"] = table["p_value"] < threshold
    table["below_corrected_p"] = table["corrected_p_value"] < threshold
    return table


def retrieval_map(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    null_size: int = 10_000,
    seed: int = 0,
    threshold: float = 0.05,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-query AP and per-class mAP of `embeddings` retrieving their class.

    Returns ``(queries, classes)``: the tables of `average_precision` (plus a ``p_value``
    column from `average_precision_p_values`) and of `mean_average_precision`.
    """
    queries = average_precision(embeddings, labels)
    queries["p_value"] = average_precision_p_values(queries, null_size=null_size, seed=seed)
    classes = mean_average_precision(queries, null_size=null_size, seed=seed, threshold=threshold)
    return queries, classes


def silhouette(
    embeddings: np.ndarray, labels: np.ndarray, *, sample_size: int | None = None, seed: int = 0
) -> float:
    """Mean silhouette, in [-1, 1], of `embeddings` against their true classes; cosine distance.

    Parameters
    ----------
    embeddings : (N, D) array of float
    labels : (N,) array
        Between 2 and N - 1 distinct classes.
    sample_size : int, optional
        Score a random subset of this many samples (sklearn's ``sample_size``), for large N.
    seed : int
        Draws the subset.
    """
    x = unit_rows(embeddings)
    labels = _check_labels(labels, len(x))
    return float(
        silhouette_score(x, labels, metric="cosine", sample_size=sample_size, random_state=seed)
    )


KMEANS_N_INIT = 10  # KMeans restarts, fixed so a seed gives the same clusters everywhere


def silhouette_kmeans(
    embeddings: np.ndarray,
    n_clusters: int,
    *,
    sample_size: int | None = None,
    seed: int = 0,
) -> float:
    """Mean silhouette, in [-1, 1], of `embeddings` against their own KMeans clusters.

    The perturbation study's unsupervised score: how well the embeddings fall into
    `n_clusters` groups, whatever the labels. KMeans (seeded, `KMEANS_N_INIT` restarts) runs
    on the rows scaled to unit length and the silhouette uses cosine distance, as `silhouette`.

    Parameters
    ----------
    embeddings : (N, D) array of float
    n_clusters : int
        Between 2 and N - 1.
    sample_size : int, optional
        Score a random subset of this many samples (sklearn's ``sample_size``).
    seed : int
        Seeds KMeans and the subset.
    """
    from sklearn.cluster import KMeans

    x = unit_rows(embeddings)
    if not 2 <= n_clusters < len(x):
        raise ValueError(f"n_clusters must be between 2 and N - 1 = {len(x) - 1}; got {n_clusters}")
    clusters = KMeans(n_clusters, n_init=KMEANS_N_INIT, random_state=seed).fit_predict(x)
    if len(set(clusters.tolist())) < 2:  # every embedding the same direction
        return float("nan")
    return float(
        silhouette_score(x, clusters, metric="cosine", sample_size=sample_size, random_state=seed)
    )
