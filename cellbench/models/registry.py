"""Model types behind one interface: a config ``type`` names the module that implements it.

Like the segmentation backends (`cellbench.segment`), every member module exposes the same
functions, so the train and evaluate stages call them without a branch on the type:

``train(params, data, sides, classes, *, seed, settings_hash, paths) -> dict``
    Fit on the ``train`` cells (``val`` for early stopping), save the model under `paths`,
    return details for the task's status. `sides` maps ``train`` / ``val`` to (N,) bool masks
    of `data`'s cells (``train``, with ``split.sample: oversampling``, to positions into
    them, repeats allowed; ``values[sides["train"]]`` reads either); `classes` is the
    output order of a classifier.
``predict(params, data, split, *, seed, paths) -> Prediction``
    Apply the saved model to every cell of `data`; `split` is each cell's split name.

and, where the type's config class declares the ability (`cellbench.config.models`):

``embed(params, data, *, seed, paths) -> (N, D) ndarray``
    ``gives_embeddings``: one embedding per cell (read by models with ``input: embeddings``).
``reconstruct(params, data, rows, *, seed, paths) -> (n, C, S, S) ndarray``
    ``gives_crops``: the crops the model makes for the cells `rows` (bool mask or indices).
``explain(params, data, rows, classes, *, seed, paths) -> dict``
    ``gives_gradcam``: explain some of the cells `rows`; ``{}`` when the entry asks for none.

Classical types share `cellbench.models.classical`, which builds each type's estimator with
its builder in `classical.CLASSIFIERS`; each PyTorch type has its own module, named in
`_TORCH_MODULES`. A type without an implementation is an error naming the registered types,
never a fallback to another model. ``tests/models/test_registry.py`` checks that the
registered types are the config's, and that each declared ability holds.

Examples
--------
>>> implementation("resnet").__name__
'cellbench.models.resnet'
>>> implementation("svm").__name__
'cellbench.models.classical'
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import NamedTuple

import numpy as np

# Each PyTorch model type and its module in cellbench/models/ (classical types: CLASSIFIERS).
_TORCH_MODULES = {
    "mlp": "mlp",
    "logistic_regression_torch": "logistic_torch",
    "resnet": "resnet",
    "vae": "vae",
    "cp2image": "generator",
}


class Prediction(NamedTuple):
    """What a model says about every cell; None where its type says nothing of the kind."""

    predicted: np.ndarray | None = None  # (N,) class names
    probabilities: np.ndarray | None = None  # (N, K), columns in the order of the classes
    embeddings: np.ndarray | None = None  # (N, D) float


def registered_types() -> dict[str, str]:
    """``{model type: module name}`` of every implemented type (classical ones first)."""
    from cellbench.models.classical import CLASSIFIERS

    return {**dict.fromkeys(CLASSIFIERS, "classical"), **_TORCH_MODULES}


def implementation(model_type: str) -> ModuleType:
    """The module implementing `model_type` (imported on first use: heavy libraries).

    Raises
    ------
    ValueError
        No module implements `model_type`; the message names the registered types.
    """
    modules = registered_types()
    if model_type not in modules:
        raise ValueError(
            f"model type {model_type!r} has no implementation; registered types: "
            f"{', '.join(modules)}. Register it in cellbench.models.registry (a PyTorch "
            "type) or cellbench.models.classical.CLASSIFIERS (a scikit-learn one)."
        )
    return importlib.import_module(f"cellbench.models.{modules[model_type]}")
