"""Classical models: scikit-learn pipelines that impute, scale, optionally reduce, and classify.

Three classifiers share one preprocessing chain, so a comparison between them compares only the
classifier:

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

Feature fusion (several feature blocks, e.g. handcrafted features next to a network embedding)
goes through `BlockStandardiser`, which learns its medians, means and SDs on the training cells
only and can weight each block so that a wide block does not dominate a narrow one.

Examples
--------
>>> model = build_classifier("svm", seed=0, pca_components=0.95)
>>> model.fit(train_x, train_y).score(test_x, test_y)  # doctest: +SKIP
>>> fused = build_fusion_classifier("logistic_regression", [300, 64], seed=0, scale_by_width=True)
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from skimage.transform import resize
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted, validate_data

from cellbench.config import RandomForestModel

CLASSIFIER_KINDS = ("random_forest", "svm", "logistic_regression")


def build_random_forest(params: RandomForestModel, seed: int, n_jobs: int = 1) -> Pipeline:
    """A random forest behind median imputation (NaN features), standard scaling and optional PCA.

    ``params`` is the config's random-forest entry; its ``pca_components`` (when it has one)
    adds the PCA step.
    """
    return build_classifier(
        "random_forest",
        seed,
        pca_components=getattr(params, "pca_components", None),
        n_estimators=params.n_estimators,
        max_depth=params.max_depth,
        min_samples_leaf=params.min_samples_leaf,
        class_weight=params.class_weight,
        n_jobs=n_jobs,
    )


def build_classifier(
    kind: str,
    seed: int,
    *,
    pca_components: int | float | None = None,
    C: float = 1.0,
    class_weight: str | None = "balanced",
    n_estimators: int = 200,
    max_depth: int | None = None,
    min_samples_leaf: int = 1,
    max_iter: int = 10_000,
    n_jobs: int = 1,
) -> Pipeline:
    """Median imputation, standard scaling, optional PCA and a classifier, as one pipeline.

    Parameters
    ----------
    kind : {"random_forest", "svm", "logistic_regression"}
        The classifier; ``"svm"`` is a linear `LinearSVC` (see the module docstring).
    seed : int
        ``random_state`` of the PCA and the classifier.
    pca_components : int or float, optional
        PCA after scaling: an int (or a whole float such as 5.0) keeps that many components, a
        float in (0, 1) the fewest components explaining that fraction of the variance. None
        (default): no PCA.
    C : float
        Inverse regularisation strength (svm, logistic_regression).
    class_weight : "balanced" or None
        Weights classes inversely to their frequency (all kinds).
    n_estimators, max_depth, min_samples_leaf : int
        Random forest only.
    max_iter : int
        Iteration limit of the svm and logistic_regression solvers. A fit that reaches it raises
        scikit-learn's ConvergenceWarning as usual; the caller decides what to do with it.
    n_jobs : int
        Parallel workers of the random forest (the linear models run on one core).

    Returns
    -------
    Pipeline
        Steps ``impute``, ``scale``, [``pca``,] ``classify``; unfitted.
    """
    steps = [
        ("impute", MedianImputer(strategy="median", keep_empty_features=True)),
        ("scale", StandardScaler()),
    ]
    return _finish(
        steps,
        _classifier(
            kind,
            seed,
            C=C,
            class_weight=class_weight,
            n_estimators=n_estimators,
            max_depth=max_depth,
            min_samples_leaf=min_samples_leaf,
            max_iter=max_iter,
            n_jobs=n_jobs,
        ),
        pca_components,
        seed,
    )


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
    return Pipeline([("fuse", fuse), *pipeline.steps[2:]])


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


def infinite_as_nan(X):
    """``X`` (array-like) with ±inf replaced by NaN; ``X`` itself when it has none."""
    array = np.asarray(X)
    if array.dtype.kind != "f" or not np.isinf(array).any():
        return X
    return np.where(np.isinf(array), np.nan, array)


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
        medians = np.zeros(X.shape[1])
        observed = ~np.isnan(X).all(axis=0)
        medians[observed] = np.nanmedian(X[:, observed], axis=0)
        filled = np.where(np.isnan(X), medians, X)
        self.medians_ = medians
        self.means_ = filled.mean(axis=0)
        sd = filled.std(axis=0)
        sd[sd == 0] = 1.0
        weights = np.repeat(
            [1 / math.sqrt(s) if self.scale_by_width else 1.0 for s in sizes], sizes
        )
        self.scales_ = sd / weights
        return self

    def transform(self, X):
        """Fill NaN and standardise ``X`` with the statistics learned in `fit`."""
        check_is_fitted(self, "scales_")
        X = validate_data(
            self, infinite_as_nan(X), dtype=np.float64, ensure_all_finite="allow-nan", reset=False
        )
        filled = np.where(np.isnan(X), self.medians_, X)
        return (filled - self.means_) / self.scales_


def flatten_crops(crops: np.ndarray, size_px: int) -> np.ndarray:
    """Crops as one row of pixels per cell, resized to ``size_px`` square where needed.

    Parameters
    ----------
    crops : (N, C, H, W) ndarray
        Cell crops, channels first, any numeric dtype.
    size_px : int
        Side of the resized crops. Crops already ``size_px`` square are not resampled; others are
        resized per channel with `skimage.transform.resize` (bilinear, anti-aliased when
        shrinking, intensities kept: ``preserve_range=True``, so uint16 values are not rescaled
        to [0, 1]).

    Returns
    -------
    (N, C * size_px * size_px) ndarray of float32
        Pixels in (channel, row, column) order.

    Examples
    --------
    >>> flatten_crops(np.zeros((4, 3, 64, 64), np.uint16), size_px=32).shape
    (4, 3072)
    """
    crops = np.asarray(crops)
    if crops.ndim != 4:
        raise ValueError(f"crops must be (N, C, H, W); got an array of shape {crops.shape}.")
    if isinstance(size_px, bool) or not isinstance(size_px, numbers.Integral) or size_px < 1:
        raise ValueError(f"size_px must be a positive int; got {size_px!r}.")
    n, channels, height, width = crops.shape
    if (height, width) == (size_px, size_px):
        return crops.reshape(n, -1).astype(np.float32)
    out = np.empty((n, channels * size_px * size_px), dtype=np.float32)
    for i, crop in enumerate(crops):
        # (H, W, C) with a 2-D output shape: skimage keeps the channel axis and never mixes it.
        resized = resize(
            np.moveaxis(crop, 0, -1).astype(np.float64),
            (size_px, size_px),
            order=1,
            anti_aliasing=True,
            preserve_range=True,
        )
        out[i] = np.moveaxis(resized, -1, 0).reshape(-1)
    return out


def _classifier(
    kind: str,
    seed: int,
    *,
    C: float,
    class_weight: str | None,
    n_estimators: int,
    max_depth: int | None,
    min_samples_leaf: int,
    max_iter: int,
    n_jobs: int,
) -> ClassifierMixin:
    if kind == "random_forest":
        return RandomForestClassifier(
            n_estimators=n_estimators,
            max_depth=max_depth,
            min_samples_leaf=min_samples_leaf,
            class_weight=class_weight,
            random_state=seed,
            n_jobs=n_jobs,
        )
    if kind == "svm":
        return LinearSVC(
            C=C, class_weight=class_weight, dual="auto", max_iter=max_iter, random_state=seed
        )
    if kind == "logistic_regression":
        # No n_jobs: it has had no effect since scikit-learn 1.8 and warns when given.
        return LogisticRegression(
            C=C, class_weight=class_weight, max_iter=max_iter, random_state=seed
        )
    raise ValueError(
        f"Unknown classifier kind {kind!r}; valid kinds: {', '.join(CLASSIFIER_KINDS)}."
    )


def _finish(
    steps: list, classifier: ClassifierMixin, pca_components: int | float | None, seed: int
) -> Pipeline:
    """Append the optional PCA and the classifier to the preprocessing steps."""
    if pca_components is not None:
        n_components = _check_pca_components(pca_components)
        steps.append(("pca", PCA(n_components=n_components, random_state=seed)))
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
