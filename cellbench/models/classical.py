"""Classical models: scikit-learn pipelines that impute, scale, optionally reduce, and classify.

Every classical model type (``family = "classical"`` in `cellbench.config.models`) is this
module in the model registry (`cellbench.models.registry`): `train` and `predict` serve them all,
and `CLASSIFIERS` maps each type to a builder of its estimator. The classifiers share one
preprocessing chain, so a comparison between them compares only the classifier:

    MedianImputer -> StandardScaler -> [PCA] -> classifier

`MedianImputer` is scikit-learn's median `SimpleImputer` that treats ±inf like NaN: a feature
infinite for one cell (a division by zero, an empty region) gets the median and never fails
the model.

- ``random_forest``: `RandomForestClassifier`.
- ``svm``: a *linear* SVM, `LinearSVC` (liblinear, ``dual="auto"``). It is chosen over
  ``SVC(kernel="linear")`` (libsvm) because its cost grows about linearly with the number of
  cells, where libsvm's grows between quadratically and cubically, and single-cell tables hold
  tens of thousands of cells. It has no ``predict_proba`` (``decision_function`` gives margins);
  use ``logistic_regression`` where calibrated probabilities are needed. It minimises the squared
  hinge loss with a penalised intercept, so its margins differ slightly from libsvm's.
- ``logistic_regression``: `LogisticRegression` (lbfgs, multinomial).
- ``gradient_boosting``: `HistGradientBoostingClassifier` (binned features, ``max_iter``
  boosting iterations of one tree per class; scikit-learn's early stopping, on above 10,000
  cells only). Its trees are checked when a model file is read
  (`cellbench.models.persist`).

A new classical type is a builder here (its config fields beyond those every classical entry has
are the builder's keyword arguments) and a line in `CLASSIFIERS`.

Feature fusion (several feature blocks, e.g. handcrafted features next to a network embedding)
goes through `BlockStandardiser`, which learns its medians, means and SDs on the training cells
only (`cellbench.models.standardise`) and can weight each block so that a wide block does not
dominate a narrow one.

Examples
--------
>>> model = build_classifier("svm", seed=0, pca_components=0.95)
>>> model.fit(train_x, train_y).score(test_x, test_y)  # doctest: +SKIP
>>> fused = build_fusion_classifier("logistic_regression", [300, 64], seed=0, scale_by_width=True)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.decomposition import PCA, IncrementalPCA
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted, validate_data

from cellbench.allocation import task_cpus
from cellbench.models.crop_pixels import flatten_crops
from cellbench.models.feature_prep import CorrelationFilter, zscore_per_group
from cellbench.models.persist import load_sklearn, save_sklearn
from cellbench.models.registry import Prediction
from cellbench.models.standardise import Standardisation, fit_standardisation, infinite_as_nan
from cellbench.models.streamed_pca import fit_streamed, predict_streamed
from cellbench.sampling import undersample
from cellbench.splits import TRAIN, split_groups

if TYPE_CHECKING:
    from cellbench.models.inputs import ModelData
    from cellbench.paths import ResultsPaths


# --- one builder per classical type: the estimator and its settings ---------------------------
# `seed` is the estimator's random_state; `class_weight` ("balanced" or None) weights classes
# inversely to their frequency. Every other keyword is a field of the type's config entry, with
# the same name and default.


def _random_forest(
    seed: int,
    *,
    class_weight: str | None,
    n_estimators: int = 200,
    max_depth: int | None = None,
    min_samples_leaf: int = 1,
    n_jobs: int | None = None,
) -> RandomForestClassifier:
    """`RandomForestClassifier`; `n_jobs` threads (None: the task's CPUs, `task_cpus`).

    The forest is the same for any `n_jobs` (each tree draws from `seed`).
    """
    return RandomForestClassifier(
        n_estimators=n_estimators,
        max_depth=max_depth,
        min_samples_leaf=min_samples_leaf,
        class_weight=class_weight,
        random_state=seed,
        n_jobs=task_cpus() if n_jobs is None else n_jobs,
    )


def _svm(
    seed: int, *, class_weight: str | None, C: float = 1.0, max_iter: int = 10_000
) -> LinearSVC:
    """`LinearSVC` (liblinear); `max_iter` is the solver's limit (ConvergenceWarning beyond)."""
    return LinearSVC(
        C=C, class_weight=class_weight, dual="auto", max_iter=max_iter, random_state=seed
    )


def _logistic_regression(
    seed: int, *, class_weight: str | None, C: float = 1.0, max_iter: int = 10_000
) -> LogisticRegression:
    """`LogisticRegression` (lbfgs); `max_iter` is the solver's limit (as for `_svm`)."""
    # No n_jobs: it has had no effect since scikit-learn 1.8 and warns when given.
    return LogisticRegression(C=C, class_weight=class_weight, max_iter=max_iter, random_state=seed)


def _gradient_boosting(
    seed: int,
    *,
    class_weight: str | None,
    max_iter: int = 100,
    learning_rate: float = 0.1,
    max_leaf_nodes: int | None = 31,
    max_depth: int | None = None,
    min_samples_leaf: int = 20,
    l2_regularization: float = 0.0,
) -> HistGradientBoostingClassifier:
    """`HistGradientBoostingClassifier`; `max_iter` boosting iterations (one tree per class)."""
    return HistGradientBoostingClassifier(
        max_iter=max_iter,
        learning_rate=learning_rate,
        max_leaf_nodes=max_leaf_nodes,
        max_depth=max_depth,
        min_samples_leaf=min_samples_leaf,
        l2_regularization=l2_regularization,
        class_weight=class_weight,
        random_state=seed,
    )


CLASSIFIERS: dict[str, Callable[..., ClassifierMixin]] = {
    "random_forest": _random_forest,
    "svm": _svm,
    "logistic_regression": _logistic_regression,
    "gradient_boosting": _gradient_boosting,
}
CLASSIFIER_KINDS = tuple(CLASSIFIERS)


# --- the registry's functions ------------------------------------------------------------------


def train(
    params,
    data: ModelData,
    sides: dict[str, np.ndarray],
    classes: list[str],
    *,
    seed: int,
    settings_hash: str,
    paths: ResultsPaths,
) -> dict:
    """Fit the pipeline on the ``train`` cells and save it (skops); no details to report.

    `classes` and `settings_hash` are not read: a scikit-learn fit finds the classes itself and
    has no checkpoint.
    """
    train_cells = sides[TRAIN]
    if getattr(params, "undersample", False):
        if train_cells.dtype == bool:
            train_cells = np.flatnonzero(train_cells)
        train_cells = train_cells[undersample(data.labels[train_cells], seed=seed)]
    if getattr(params, "streams_crops", False):
        model = _fit_streamed(params, data, train_cells, seed)
    else:
        model = build_classical(params, data, seed)
        model.fit(classical_inputs(params, data)[train_cells], data.labels[train_cells])
    save_sklearn(model, paths.model_file(params.name, seed))
    return {}


def predict(
    params, data: ModelData, split: np.ndarray, *, seed: int, paths: ResultsPaths
) -> Prediction:
    """Classes of every cell, and their probabilities where the type gives them."""
    model = load_sklearn(paths.model_file(params.name, seed))  # skops: trusted types only
    if getattr(params, "streams_crops", False):
        predicted, probabilities = predict_streamed(
            model,
            data.crops,
            data.features if params.reads_features else None,
            size_px=params.size_px,
            batch_size=params.pca_batch_size,
            probabilities=params.gives_probabilities,
        )
        return Prediction(predicted=predicted, probabilities=probabilities)
    inputs = classical_inputs(params, data)
    probabilities = model.predict_proba(inputs) if params.gives_probabilities else None
    return Prediction(predicted=model.predict(inputs), probabilities=probabilities)


def _fit_streamed(params, data: ModelData, train_cells: np.ndarray, seed: int) -> Pipeline:
    """Incremental PCA on the training cells' crops read in chunks, then the classifier.

    With ``input: fusion`` the feature columns join the PCA scores standardised on the
    training cells (`BlockStandardiser`, one block); see `cellbench.models.streamed_pca`.
    """
    classifier = _classifier(
        params.type, seed, class_weight=params.class_weight, **params.classifier_options
    )
    features = data.features[train_cells] if params.reads_features else None
    features_step = (
        BlockStandardiser(block_sizes=[data.features.shape[1]])
        if params.reads_features
        else "passthrough"
    )
    return fit_streamed(
        data.crops[train_cells],
        features,
        data.labels[train_cells],
        classifier,
        features_step,
        size_px=params.size_px,
        n_components=int(params.pca_components),
        batch_size=params.pca_batch_size,
    )


def classical_inputs(params, data: ModelData) -> np.ndarray:
    """The (N, F) matrix a scikit-learn model reads: features, flattened crops, or both.

    Every cell's flattened crops are in memory at once (with a copy while stacking): models
    with ``pca_method: incremental`` on crops read them in chunks instead (`_fit_streamed`).
    """
    features = data.features
    if getattr(params, "zscore_per_well", False) and features is not None:
        features = zscore_per_group(features, split_groups(data.cells, "well").to_numpy())
    if not params.reads_crops:  # features, or another model's embeddings
        return features
    crops = flatten_crops(data.crops.to_array(), params.size_px)  # in memory: scikit-learn
    return np.hstack([features, crops]) if params.reads_features else crops


def build_classical(params, data: ModelData | None, seed: int) -> Pipeline:
    """The unfitted pipeline of a classical model config: its type's builder, its settings.

    `data` is read only by a fusion model (features and crops), for the widths of its blocks.
    """
    options = {
        "pca_components": params.pca_components,
        "pca_batch_size": params.pca_batch_size if params.pca_method == "incremental" else None,
        "class_weight": params.class_weight,
        "prune_correlation": getattr(params, "prune_correlation", None),
        **params.classifier_options,
    }
    if params.reads_features and params.reads_crops:  # fusion
        blocks = [data.features.shape[1], data.crops.shape[1] * params.size_px**2]
        return build_fusion_classifier(params.type, blocks, seed, **options)
    return build_classifier(params.type, seed, **options)


# --- pipelines ---------------------------------------------------------------------------------


def build_classifier(
    kind: str,
    seed: int,
    *,
    pca_components: int | float | None = None,
    pca_batch_size: int | None = None,
    class_weight: str | None = "balanced",
    prune_correlation: float | None = None,
    **options,
) -> Pipeline:
    """Median imputation, [correlation pruning,] scaling, optional PCA and a classifier.

    Parameters
    ----------
    kind : str
        A key of `CLASSIFIERS`: ``"random_forest"``, ``"svm"`` (a linear `LinearSVC`, see the
        module docstring), ``"logistic_regression"`` or ``"gradient_boosting"``.
    seed : int
        ``random_state`` of the PCA and the classifier.
    pca_components : int or float, optional
        PCA after scaling: an int (or a whole float such as 5.0) keeps that many components, a
        float in (0, 1) the fewest components explaining that fraction of the variance. None
        (default): no PCA.
    pca_batch_size : int, optional
        Given: `IncrementalPCA` fitted in batches of this many rows (a count of components
        only); None (default): `PCA`. The rows are in memory either way; crops read in chunks
        go through `cellbench.models.streamed_pca` instead.
    class_weight : "balanced" or None
        Weights classes inversely to their frequency (all kinds).
    prune_correlation : float, optional
        Given: a ``prune`` step after imputation (`CorrelationFilter`) keeps one column of
        every pair whose |Pearson r| on the training cells exceeds it.
    **options
        The classifier's own settings, the keyword arguments of its builder: ``n_estimators``,
        ``max_depth``, ``min_samples_leaf``, ``n_jobs`` (random_forest); ``C``, ``max_iter``
        (svm, logistic_regression: the solver's iteration limit); ``max_iter``,
        ``learning_rate``, ``max_leaf_nodes``, ``max_depth``, ``min_samples_leaf``,
        ``l2_regularization`` (gradient_boosting). An option the kind has not is a TypeError.

    Returns
    -------
    Pipeline
        Steps ``impute``, [``prune``,] ``scale``, [``pca``,] ``classify``; unfitted.
    """
    steps = [("impute", MedianImputer(strategy="median", keep_empty_features=True))]
    if prune_correlation is not None:
        steps.append(("prune", CorrelationFilter(threshold=prune_correlation)))
    steps.append(("scale", StandardScaler()))
    classifier = _classifier(kind, seed, class_weight=class_weight, **options)
    return _finish(steps, classifier, pca_components, seed, pca_batch_size)


def build_fusion_classifier(
    kind: str,
    block_sizes: list[int],
    seed: int,
    *,
    scale_by_width: bool = False,
    **options,
) -> Pipeline:
    """`build_classifier` on several feature blocks side by side, each standardised on its own.

    The input is the blocks concatenated column-wise (``np.hstack(blocks)``), ``block_sizes``
    their widths in order. Steps: ``fuse`` (`BlockStandardiser`, which imputes and scales each
    block) replacing ``impute`` and ``scale``, then [``pca``,] ``classify``. `options` are the
    keyword arguments of `build_classifier`.

    Examples
    --------
    >>> model = build_fusion_classifier("svm", [300, 64], seed=0, scale_by_width=True)
    >>> model.fit(np.hstack([handcrafted, embedding]), labels)  # doctest: +SKIP
    """
    fuse = BlockStandardiser(block_sizes=list(block_sizes), scale_by_width=scale_by_width)
    pipeline = build_classifier(kind, seed, **options)
    after = [step for step in pipeline.steps if step[0] not in ("impute", "prune", "scale")]
    return Pipeline([("fuse", fuse), *after])  # no pruning across fused blocks


class MedianImputer(SimpleImputer):
    """`SimpleImputer` that fills ±inf like NaN (scikit-learn refuses infinite input).

    Examples
    --------
    >>> MedianImputer(strategy="median").fit_transform(np.array([[1.0], [np.inf], [3.0]]))
    array([[1.],
           [2.],
           [3.]])
    """

    def fit(self, X, y=None):
        """Learn the column medians, infinite values left out."""
        return super().fit(infinite_as_nan(X), y)

    def transform(self, X):
        """Fill NaN and ±inf with the medians learned in `fit`."""
        return super().transform(infinite_as_nan(X))


class BlockStandardiser(TransformerMixin, BaseEstimator):
    """Standardise each feature block with training statistics; optionally equalise blocks.

    ``fit`` learns, per column and on the training cells only, the median (to fill NaN; a column
    that is NaN throughout gets 0), then the mean and SD of the filled column (SD 0 becomes 1).
    ``transform`` fills NaN with the *training* medians and standardises with the *training*
    means and SDs: a test set whose mean has shifted stays shifted. ±inf counts as NaN.

    Parameters
    ----------
    block_sizes : list of int
        Widths of the blocks, in column order; they must add up to the number of columns.
    scale_by_width : bool
        Divide every column of a block by ``sqrt(block width)`` after standardising, so each
        block has total variance 1 whatever its width: a 300-column block then weighs as much
        as a 10-column one in distances and in an L2-penalised linear model (not in a random
        forest, which ignores scale). Default False: every *column* weighs the same.

    Examples
    --------
    >>> fuse = BlockStandardiser(block_sizes=[2, 1], scale_by_width=True)
    >>> fuse.fit_transform(np.array([[0.0, 1.0, 5.0], [2.0, np.nan, 7.0]])).shape
    (2, 3)
    """

    def __init__(self, block_sizes: list[int], scale_by_width: bool = False):
        self.block_sizes = block_sizes
        self.scale_by_width = scale_by_width

    def fit(self, X, y=None):
        """Learn per-column medians, means and SDs from the training cells ``X``."""
        X = validate_data(self, infinite_as_nan(X), dtype=np.float64, ensure_all_finite="allow-nan")
        sizes = _check_block_sizes(self.block_sizes, X.shape[1])
        stats = fit_standardisation(X)
        weights = np.repeat(
            [1 / math.sqrt(s) if self.scale_by_width else 1.0 for s in sizes], sizes
        )
        self.medians_ = stats.medians
        self.means_ = stats.means
        self.scales_ = stats.scales / weights
        return self

    def transform(self, X):
        """Fill NaN and standardise ``X`` with the statistics learned in `fit`."""
        check_is_fitted(self, "scales_")
        X = validate_data(
            self, infinite_as_nan(X), dtype=np.float64, ensure_all_finite="allow-nan", reset=False
        )
        return Standardisation(self.medians_, self.means_, self.scales_).apply(X)


def _classifier(kind: str, seed: int, **options) -> ClassifierMixin:
    """The estimator of `kind`, from its builder in `CLASSIFIERS`; never a fallback."""
    if kind not in CLASSIFIERS:
        raise ValueError(
            f"Unknown classifier kind {kind!r}; valid kinds: {', '.join(CLASSIFIERS)}. A new "
            "kind is a builder in cellbench.models.classical.CLASSIFIERS."
        )
    return CLASSIFIERS[kind](seed, **options)


def _finish(
    steps: list,
    classifier: ClassifierMixin,
    pca_components: int | float | None,
    seed: int,
    pca_batch_size: int | None = None,
) -> Pipeline:
    """Append the optional PCA (incremental with a batch size) and the classifier."""
    if pca_components is not None:
        n_components = _check_pca_components(pca_components)
        if pca_batch_size is None:
            pca = PCA(n_components=n_components, random_state=seed)
        elif isinstance(n_components, float):
            raise ValueError(
                f"pca_components: IncrementalPCA keeps a count of components; got {n_components}"
            )
        else:
            pca = IncrementalPCA(n_components=n_components, batch_size=pca_batch_size)
        steps.append(("pca", pca))
    steps.append(("classify", classifier))
    return Pipeline(steps)


def _check_pca_components(value: int | float) -> int | float:
    """The PCA ``n_components``: a count (whole floats such as 5.0 become 5) or a fraction."""
    if isinstance(value, float) and value >= 1 and value.is_integer():
        value = int(value)  # the config's float field reads "5" as 5.0
    is_int = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    is_fraction = isinstance(value, float) and 0 < value < 1
    if not ((is_int and value >= 1) or is_fraction):
        raise ValueError(
            f"pca_components must be an int >= 1 (components kept) or a float in (0, 1) "
            f"(fraction of variance kept), or None for no PCA; got {value!r}."
        )
    return value


def _check_block_sizes(block_sizes: list[int], n_columns: int) -> list[int]:
    sizes = list(block_sizes)
    if not sizes or any(
        isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1 for s in sizes
    ):
        raise ValueError(f"block_sizes must be a non-empty list of positive ints; got {sizes!r}.")
    if sum(sizes) != n_columns:
        raise ValueError(
            f"block_sizes {sizes} add up to {sum(sizes)} columns but X has {n_columns}; give the "
            "widths of the concatenated blocks in column order."
        )
    return sizes
