"""Save and load fitted models without pickle, so that a model file cannot run code.

A pickle (what `joblib.dump` writes) can run any code when it is loaded, so a crafted
``model.joblib`` would run at the next evaluate. Classical models are therefore saved with
skops (`skops.io`), whose files hold a schema and arrays, not code: loading builds only the
types named in `TRUSTED_TYPES` (besides the scikit-learn and numpy types skops trusts by
default) and refuses a file holding anything else before constructing any of it. PyTorch
files are read with ``torch.load(weights_only=True)``, which builds tensors and plain
containers only; `load_torch` turns its refusals into a clear error.

Examples
--------
>>> save_sklearn(pipeline, paths.model_file("rf", 0))  # doctest: +SKIP
>>> load_sklearn(paths.model_file("rf", 0)).predict(features)  # doctest: +SKIP
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cellbench.errors import CellbenchError, InputMissing
from cellbench.io.atomic import atomic_path

# What our classical pipelines hold beyond skops' default trust, found with
# `skops.io.get_untrusted_types` on every model we build (random_forest, svm,
# logistic_regression, gradient_boosting; with and without PCA; the fusion pipeline; the
# embedding probe). tests/reliability/test_model_files.py checks that the list still covers
# them all. A type whose methods index memory without bounds checks is trusted only with a
# check of what it holds in `load_sklearn` (`_check_trees`, `_check_boosted_trees`).
TRUSTED_TYPES = (
    "cellbench.models.classical.BlockStandardiser",  # fusion: per-block scaling (ours)
    "cellbench.models.classical.MedianImputer",  # SimpleImputer filling inf too (ours)
    "cellbench.models.feature_prep.CorrelationFilter",  # correlation pruning (ours)
    "numpy.dtype",  # dtypes of fitted arrays
    # gradient-boosting trees (HistGradientBoostingClassifier); checked in `_check_boosted_trees`
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",  # random-forest trees; node indices checked in `_check_trees`
)


_WEIGHTS_ERROR = "WeightsUnpickler error:"  # torch.load's reason follows this


class ModelFileError(CellbenchError):
    """A model file is not one this project wrote (corrupt, tampered or of another format)."""


def save_sklearn(model: Any, path: str | Path) -> None:
    """Write a fitted scikit-learn model to `path` in skops format, atomically.

    Raises
    ------
    TypeError
        The model holds a type `load_sklearn` would refuse (not in `TRUSTED_TYPES`): a bug
        to fix here, found when training rather than at the next evaluate.
    """
    import skops.io

    with atomic_path(path) as tmp:
        skops.io.dump(model, tmp)
        untrusted = _untrusted(skops.io.get_untrusted_types(file=tmp))
        if untrusted:
            raise TypeError(
                f"{type(model).__name__} holds types that load_sklearn refuses: {untrusted}; "
                "if they are ours or scikit-learn's, add them to "
                "cellbench.models.persist.TRUSTED_TYPES"
            )


def load_sklearn(path: str | Path) -> Any:
    """Read a model written by `save_sklearn`, building only trusted types.

    Raises
    ------
    InputMissing
        There is no file at `path`.
    ModelFileError
        The file is not a skops file, holds a type not on the trusted list, cannot be built,
        or is not a fitted model; nothing in it is run.
    """
    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    path = Path(path)
    if not path.is_file():
        raise InputMissing(f"{path}: no model file; has the model's train task run?")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(_refusal(path, "is not a skops model file (not a zip archive)"))
    try:
        model = skops.io.load(path, trusted=list(TRUSTED_TYPES))
    except UntrustedTypesFoundException as exc:
        found = exc.args[0] if exc.args else []
        found = _untrusted([found] if isinstance(found, str) else found)
        raise ModelFileError(
            _refusal(path, f"contains types not on the trusted list: {found}")
        ) from None
    except Exception as exc:  # a damaged file fails in zipfile, json or a type's setstate
        reason = f"is not a skops model file this project wrote ({type(exc).__name__}: {exc})"
        raise ModelFileError(_refusal(path, reason)) from None
    if not hasattr(model, "predict"):
        raise ModelFileError(_refusal(path, f"holds a {type(model).__name__}, not a model"))
    _check_trees(model, path)
    _check_boosted_trees(model, path)
    return model


def load_torch(path: str | Path) -> dict:
    """Read a PyTorch file of this project (a dict of tensors and plain values) onto the CPU.

    Raises
    ------
    InputMissing
        There is no file at `path`.
    ModelFileError
        ``torch.load(weights_only=True)`` refuses the file (it holds code or other objects, or
        is damaged), or it holds no dict; nothing in it is run.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputMissing(f"{path}: no model file; has the model's train task run?")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError, EOFError, ... for a bad file
        reason = f"is not a PyTorch file this project wrote ({_torch_reason(exc)})"
        raise ModelFileError(_refusal(path, reason)) from None
    if not isinstance(saved, dict):
        raise ModelFileError(_refusal(path, f"holds a {type(saved).__name__}, not a dict"))
    return saved


def _untrusted(types: Any) -> list[str]:
    """The names among `types` that are not in `TRUSTED_TYPES`, sorted."""
    return sorted(set(types) - set(TRUSTED_TYPES))


def _torch_reason(exc: Exception) -> str:
    """The gist of a `torch.load` error: the unpickler's complaint, not its advice."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    if _WEIGHTS_ERROR in text:
        text = text.split(_WEIGHTS_ERROR, 1)[1]
    gist = next((line.strip() for line in text.splitlines() if line.strip()), "")
    gist = gist.split(". ", 1)[0].rstrip(".")
    return f"{type(exc).__name__}: {gist}" if gist else type(exc).__name__


def _refusal(path: Path, reason: str) -> str:
    return f"{path} {reason}; it was not loaded. Retrain the model to write it again."


def _check_trees(model: Any, path: Path) -> None:
    """Refuse trees whose node indices point outside the tree or backwards.

    scikit-learn indexes a tree's nodes and features without bounds checks, so a crafted
    `Tree` could make ``predict`` read outside memory or loop forever; ours never do that.
    """
    for estimator in _tree_estimators(model):
        tree = estimator.tree_
        n_features = getattr(estimator, "n_features_in_", tree.n_features)
        if not _tree_is_sound(tree, n_features):
            raise ModelFileError(_refusal(path, "holds a decision tree with invalid nodes"))


def _pipeline_steps(model: Any) -> list[Any]:
    """The estimators of a pipeline, in order; a lone estimator as itself."""
    return [step for _, step in getattr(model, "steps", [])] or [model]


def _tree_estimators(model: Any) -> Iterator[Any]:
    """The fitted decision trees (estimators with ``tree_``) of a pipeline's steps."""
    for step in _pipeline_steps(model):
        for estimator in [step, *getattr(step, "estimators_", [])]:
            if hasattr(estimator, "tree_"):
                yield estimator


def _tree_is_sound(tree: Any, n_features: int) -> bool:
    """Children after their parent and inside the tree, features inside the input."""
    count = tree.node_count
    left, right, feature = tree.children_left, tree.children_right, tree.feature
    if not (len(left) == len(right) == len(feature) == count == tree.value.shape[0]):
        return False
    leaf = left == -1
    if not np.array_equal(leaf, right == -1):
        return False
    parents = np.flatnonzero(~leaf)
    inside = [(c[~leaf] > parents) & (c[~leaf] < count) for c in (left, right)]
    used = feature[~leaf]
    return bool(np.all(inside) and np.all((used >= 0) & (used < n_features)))


def _check_boosted_trees(model: Any, path: Path) -> None:
    """Refuse gradient-boosted trees that could read outside memory or never stop.

    A `HistGradientBoostingClassifier` predicts by walking each `TreePredictor`'s node array
    in Cython without bounds checks: a crafted file whose child index points outside the
    array or back up the tree makes ``predict`` read outside memory or loop forever, and a
    feature index outside the input reads outside the input. Categorical splits also index
    bitsets unchecked; our inputs are numeric, so our models have none, and none is accepted.
    """
    for step in _pipeline_steps(model):
        if hasattr(step, "_predictors") and not _boosting_is_sound(step):
            raise ModelFileError(_refusal(path, "holds gradient-boosted trees with invalid nodes"))


def _boosting_is_sound(estimator: Any) -> bool:
    """Numeric splits only, and every predictor's nodes sound (`_boosted_tree_is_sound`)."""
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    try:
        n_features = int(estimator.n_features_in_)
        numeric = (
            estimator._preprocessor is None  # set only for categorical features
            and not np.any(estimator.is_categorical_)
            and not np.any(estimator._bin_mapper.is_categorical_)
            and not getattr(estimator, "_in_fit", False)  # predicting binned training data
        )
        predictors = [p for iteration in estimator._predictors for p in iteration]
        return (
            numeric
            and len(predictors) > 0
            and all(isinstance(p, TreePredictor) for p in predictors)
            and all(_boosted_tree_is_sound(p.nodes, n_features) for p in predictors)
        )
    except (AttributeError, TypeError, ValueError, KeyError):  # not what scikit-learn writes
        return False


def _boosted_tree_is_sound(nodes: Any, n_features: int) -> bool:
    """A non-empty record array whose split nodes have their children after them, inside it."""
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    if not isinstance(nodes, np.ndarray) or nodes.dtype != PREDICTOR_RECORD_DTYPE:
        return False
    if nodes.ndim != 1 or len(nodes) == 0:
        return False
    split = nodes["is_leaf"] == 0  # the walk stops at any non-zero is_leaf
    parents = np.flatnonzero(split)
    count = len(nodes)
    inside = [(nodes[c][split] > parents) & (nodes[c][split] < count) for c in ("left", "right")]
    used = nodes["feature_idx"][split]
    return bool(
        np.all(inside)
        and np.all((used >= 0) & (used < n_features))
        and not np.any(nodes["is_categorical"][split])
    )
