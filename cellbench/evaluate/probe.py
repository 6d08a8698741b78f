"""Classical models on another model's embeddings, fitted once that model has trained.

A model with ``input: embeddings`` reads the embeddings of a model of the same experiment
(same seed) whose type gives them (``gives_embeddings``: ResNet, VAE). Those exist only after
that model has trained, so such a model has no train task: its evaluate task (which runs after
the whole train stage) embeds the cells, fits the classifier on the training cells of the
embedding model's own split (so the classifier never trains on a cell the embedding model was
tested on), and saves it like any trained model; the usual evaluation follows.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from cellbench.io.atomic import atomic_path, write_json
from cellbench.models.classical import build_classical
from cellbench.models.inputs import CELL_ID, ModelData, load_model_data
from cellbench.models.persist import save_sklearn
from cellbench.models.registry import implementation
from cellbench.models.train import SPLIT_COLUMN
from cellbench.paths import ResultsPaths
from cellbench.splits import TRAIN

log = logging.getLogger(__name__)


def embedding_data(
    source,
    label_column: str,
    seed: int,
    paths: ResultsPaths,
    crop_stores: list[Path],
    *,
    split=None,
) -> ModelData:
    """The labelled cells of `source` (a ResNet or VAE config) with its embeddings as features.

    `split` (a `SplitConfig`) is the split `source` was trained with.
    """
    data = load_model_data(source, label_column, [], crop_stores, split=split)
    embeddings = implementation(source.type).embed(source, data, seed=seed, paths=paths)
    data.features = embeddings
    data.feature_names = [f"{source.name}_embedding_{i:03d}" for i in range(embeddings.shape[1])]
    data.crops = None
    return data


def fit_on_embeddings(params, source, data: ModelData, seed: int, paths: ResultsPaths) -> None:
    """Fit `params` on the training cells of `source`'s split; save model, split and info."""
    split_table = pd.read_parquet(paths.split_file(source.name, seed))
    split = data.cells[CELL_ID].map(split_table.set_index("cell_id")[SPLIT_COLUMN])
    train = (split == TRAIN).to_numpy()
    model = build_classical(params, data, seed)
    model.fit(data.features[train], data.labels[train])
    save_sklearn(model, paths.model_file(params.name, seed))
    with atomic_path(paths.split_file(params.name, seed)) as tmp:
        pd.DataFrame({"cell_id": data.cells[CELL_ID], SPLIT_COLUMN: split}).to_parquet(
            tmp, index=False
        )
    write_json(
        paths.model_info(params.name, seed),
        {
            "model": params.name,
            "type": params.type,
            "input": params.input,
            "embedding_model": source.name,
            "seed": seed,
            "feature_columns": data.feature_names,
            "classes": sorted(set(data.labels)),
            "majority_class": pd.Series(data.labels[train]).value_counts().index[0],
            "cells_per_split": {k: int(v) for k, v in split.value_counts().items()},
        },
    )
    log.info("%s: fitted on %d cells' %s embeddings", params.name, train.sum(), source.name)
