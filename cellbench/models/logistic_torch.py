"""Multinomial logistic regression in PyTorch: the ``logistic_regression_torch`` model type.

The background-confound study's classifier (``train_lr.py``): one linear layer from the
features to the class logits, trained with cross-entropy (Adam, learning rate 1e-3, batches
of 128, 5 epochs: `cellbench.config.LogisticRegressionTorchModel`'s defaults). It is the
``mlp`` network with no hidden layer (`cellbench.models.mlp.FeatureMLP`), fitted by the same
`cellbench.models.mlp.train_mlp` and the shared training loop, and saved the same way; it
also gives the softmax class probabilities, which the KL study compares.

Differences from ``train_lr.py``: features are median-imputed and standardised on the
training cells inside the saved model; the weights, the batch order and the split are seeded;
a validation split, when configured, keeps the best epoch.

Examples
--------
>>> from cellbench.config import LogisticRegressionTorchModel
>>> LogisticRegressionTorchModel(name="lr").epochs
5
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cellbench.config import LogisticRegressionTorchModel
from cellbench.models.mlp import predict_proba_mlp
from cellbench.models.mlp import train as train  # mlp's fit, whole: the network has no hidden layer
from cellbench.models.registry import Prediction

if TYPE_CHECKING:
    from cellbench.models.inputs import ModelData
    from cellbench.paths import ResultsPaths


def predict(
    params: LogisticRegressionTorchModel,
    data: ModelData,
    split: np.ndarray,
    *,
    seed: int,
    paths: ResultsPaths,
) -> Prediction:
    """Softmax class probabilities (columns in the trained class order) and the likeliest class."""
    classes, probabilities = predict_proba_mlp(
        paths.torch_model_file(params.name, seed), data.features
    )
    return Prediction(classes[probabilities.argmax(axis=1)], probabilities)
