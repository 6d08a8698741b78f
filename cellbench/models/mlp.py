"""A multilayer perceptron on handcrafted features, in plain PyTorch.

Features are imputed (training medians) and standardised (training mean and SD) inside the
saved model (`cellbench.models.standardise`), so prediction needs nothing but the model file.
The ``mlp`` model type of the registry (`cellbench.models.registry`): `train` and `predict`.
With no hidden layer the network is a multinomial logistic regression: the
``logistic_regression_torch`` type (`cellbench.models.logistic_torch`) trains it with
`train_mlp` too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from cellbench.config import LogisticRegressionTorchModel, MLPModel
from cellbench.io.atomic import atomic_path
from cellbench.models.persist import load_torch
from cellbench.models.registry import Prediction
from cellbench.models.standardise import fit_standardisation
from cellbench.models.training import (
    FitSettings,
    by_split,
    class_weights,
    finish,
    fit,
    save_history,
    treatment_groups,
)

if TYPE_CHECKING:
    from cellbench.models.inputs import ModelData
    from cellbench.paths import ResultsPaths


class FeatureMLP(nn.Module):
    """Standardise, then Linear-ReLU-Dropout blocks and a linear layer to class logits."""

    def __init__(self, n_features: int, n_classes: int, hidden: list[int], dropout: float):
        super().__init__()
        self.register_buffer("median", torch.zeros(n_features))
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))
        layers: list[nn.Module] = []
        width = n_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, n_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(N, F) raw features, NaN and ±inf allowed -> (N, K) logits."""
        features = torch.where(torch.isfinite(features), features, self.median)
        return self.layers((features - self.mean) / self.scale)

    def fit_preprocessing(self, features: np.ndarray) -> None:
        """Set the imputation and standardisation statistics from training features."""
        stats = fit_standardisation(features)
        self.median.copy_(torch.as_tensor(stats.medians, dtype=torch.float32))
        self.mean.copy_(torch.as_tensor(stats.means, dtype=torch.float32))
        self.scale.copy_(torch.as_tensor(stats.scales, dtype=torch.float32))


def train_mlp(
    params: MLPModel | LogisticRegressionTorchModel,
    features: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    classes: list[str],
    seed: int,
    settings_hash: str,
    model_path,
    checkpoint_path,
    batch_groups: np.ndarray | None = None,
) -> dict:
    """Fit the MLP on the ``train`` cells (best epoch on ``val`` cells) and save it.

    Parameters
    ----------
    params : MLPModel or LogisticRegressionTorchModel
        Its ``hidden`` layers (none: logistic regression), ``dropout``, ``class_weight``
        (``"balanced"``: the loss weighted by inverse class frequency; None: plain
        cross-entropy) and the optimisation settings (`cellbench.config.TrainingConfig`).
    features, labels : dict of {split: array}
        (N, F) float features and (N,) class names of the ``train`` and ``val`` cells.
    classes : list of str
        Output order of the logits.
    batch_groups : (N,) array, optional
        The ``train`` cells' treatments, for ``batches: one_per_treatment``.

    Returns
    -------
    dict
        The training history.
    """
    torch.manual_seed(seed)
    model = FeatureMLP(features["train"].shape[1], len(classes), params.hidden, params.dropout)
    model.fit_preprocessing(features["train"])
    index = {name: i for i, name in enumerate(classes)}

    def dataset(split: str) -> TensorDataset | None:
        if len(labels.get(split, [])) == 0:
            return None
        targets = torch.as_tensor([index[c] for c in labels[split]], dtype=torch.long)
        inputs = torch.from_numpy(np.array(features[split], dtype=np.float32))
        return TensorDataset(inputs, targets)

    train_targets = np.array([index[c] for c in labels["train"]])
    weights = (
        class_weights(train_targets, len(classes)) if params.class_weight == "balanced" else None
    )
    loss = nn.CrossEntropyLoss(weight=weights)  # on logits
    settings = FitSettings(params, seed, settings_hash, groups=batch_groups)  # params: whole
    history = fit(
        model,
        dataset("train"),
        dataset("val"),
        lambda out, y: loss(out, y.to(out.device)),
        settings,
        checkpoint_path,
    )
    save = {
        "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
        "n_features": features["train"].shape[1],
        "classes": list(classes),
        "hidden": list(params.hidden),
        "dropout": params.dropout,
    }
    with atomic_path(model_path) as tmp:
        torch.save(save, tmp)
    finish(checkpoint_path)
    return history


def predict_proba_mlp(model_path, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities (softmax of the logits) of (N, F) features by a saved MLP.

    Returns
    -------
    classes : (K,) ndarray of str
        The column order, as trained.
    probabilities : (N, K) ndarray of float32
    """
    saved = load_torch(model_path)  # weights_only: tensors and plain data, never code
    model = FeatureMLP(
        saved["n_features"], len(saved["classes"]), saved["hidden"], saved["dropout"]
    )
    model.load_state_dict(saved["state_dict"])
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(np.array(features, dtype=np.float32)))
    return np.asarray(saved["classes"]), torch.softmax(logits, dim=1).numpy()


def predict_mlp(model_path, features: np.ndarray) -> np.ndarray:
    """Class names predicted for (N, F) features by a saved MLP."""
    classes, probabilities = predict_proba_mlp(model_path, features)
    return classes[probabilities.argmax(axis=1)]


# --- the registry's functions ------------------------------------------------------------------


def train(
    params: MLPModel,
    data: ModelData,
    sides: dict[str, np.ndarray],
    classes: list[str],
    *,
    seed: int,
    settings_hash: str,
    paths: ResultsPaths,
) -> dict:
    """Fit the MLP on the ``train`` cells' features (best epoch on ``val``); save it and history."""
    history = train_mlp(
        params,
        by_split(data.features, sides),
        by_split(data.labels, sides),
        classes,
        seed,
        settings_hash,
        paths.torch_model_file(params.name, seed),
        paths.checkpoint(params.name, seed),
        batch_groups=treatment_groups(params, data.cells, sides["train"]),
    )
    return save_history(history, paths.history(params.name, seed))


def predict(
    params: MLPModel, data: ModelData, split: np.ndarray, *, seed: int, paths: ResultsPaths
) -> Prediction:
    """The class the saved MLP gives each cell's features."""
    return Prediction(predict_mlp(paths.torch_model_file(params.name, seed), data.features))
