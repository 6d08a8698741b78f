"""Each study of configs/studies/ end to end at a reduced size (epochs cut to 1 or 2).

The studies run on the real data of $CELLBENCH_DATA; at full size by hand (times in the
README), here with their models trained for a token number of epochs, which checks that every
stage, model and table of the study runs, not the numbers it reaches.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from cellbench.config import config_from_dict, default_data_root
from cellbench.execution.run import execute
from cellbench.paths import ResultsPaths
from tests.helpers import REPO

# A study with its own tests/test_study_<name>.py is run end to end there (at its own reduced
# size, with its own checks: the CP2Image study has no accuracy, the co-culture study runs on
# the synthetic plate); every other study runs here.
STUDIES = [
    path
    for path in sorted((REPO / "configs" / "studies").glob("*.yaml"))
    if not (REPO / "tests" / f"test_study_{path.stem}.py").exists()
]


def reduced(path, results_root) -> dict:
    """The study's config with one seed (one fold) and every PyTorch model trained 1 epoch."""
    raw = yaml.safe_load(path.read_text())
    raw["results_root"] = str(results_root)
    raw["seeds"] = raw["seeds"][:1]
    for model in raw["models"]:
        if "epochs" in model:
            model["epochs"] = 1
    return raw


@pytest.mark.skipif(
    not (default_data_root() / "bbbc021").is_dir(), reason="BBBC021 not in $CELLBENCH_DATA"
)
@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_study_runs_end_to_end_at_a_reduced_size(path, tmp_path):
    config = config_from_dict(reduced(path, tmp_path / "results"))
    results = execute(config, "all", "local", echo=lambda line: None).results
    assert [f"{r.stage}/{r.task}: {r.message}" for r in results if not r.ok] == []
    paths = ResultsPaths(config.results_root)
    for model in config.models:
        metrics = json.loads(paths.metrics(model.name, config.seeds[0]).read_text())
        assert 0 <= metrics["accuracy"] <= 1, model.name
        if model.type == "vae":
            assert {"silhouette", "map", "reconstruction_mse"} <= set(metrics), model.name
            assert paths.latent_usage(model.name, config.seeds[0]).exists(), model.name
            groupings = config.evaluate.mmd.groupings
            assert metrics["mmd_groupings"] == groupings, model.name
            mmd = pd.read_csv(paths.mmd_table(model.name, config.seeds[0]))
            assert list(dict.fromkeys(mmd["grouping"])) == groupings, model.name
        if model.gives_embeddings:
            assert -1 <= metrics["silhouette_kmeans"] <= 1, model.name
    assert (paths.report_dir / "index.html").stat().st_size > 0
    if config.report.published:
        published = (paths.report_dir / "published_vs_ours.csv").read_text().splitlines()
        assert len(published) == 1 + len(config.report.published)


def test_the_vae_study_uses_the_studys_settings():
    raw = yaml.safe_load((REPO / "configs" / "studies" / "vae_bbbc021.yaml").read_text())
    raw["results_root"] = "unused"
    if not (default_data_root() / "bbbc021").is_dir():
        pytest.skip("BBBC021 not in $CELLBENCH_DATA")
    config = config_from_dict(raw)
    assert config.split.by == "compound_wells" and config.split.test_fraction == 0.1
    presets = {m.name: m.preset for m in config.models}
    assert presets == {
        "vae_small": "small",
        "vae_medium": "medium",
        "vae_large": "large",
        "beta_vae": "beta_vae",
        "vae_plus": "vae_plus",
    }
    for model in config.models:
        assert model.normalise == "minmax" and model.size_px == 68
        assert model.logvar_clamp == (-6.0, 3.0) and model.gradient_clip == 1.0
        assert model.adversarial == (model.preset == "vae_plus")
    treatment = "Metadata_Compound+Metadata_Concentration"
    assert config.evaluate.mmd.groupings == [treatment, "label"]
    assert config.evaluate.mmd.multipliers == [0.5, 1.0, 1.5, 2.0]


def test_the_perturbation_study_uses_the_studys_settings():
    raw = yaml.safe_load((REPO / "configs" / "studies" / "perturbation.yaml").read_text())
    raw["results_root"] = "unused"
    if not (default_data_root() / "bbbc021").is_dir():
        pytest.skip("BBBC021 not in $CELLBENCH_DATA")
    config = config_from_dict(raw)
    assert (config.split.by, config.split.folds, config.split.fold_seed) == ("cell", 5, 42)
    assert config.seeds == [0, 1, 2, 3, 4]  # one per fold
    models = {m.name: m for m in config.models}
    for name in ("lr_pixels", "lr_pixels_fused"):
        lr = models[name]
        assert (lr.pca_method, lr.pca_components, lr.pca_batch_size) == ("incremental", 100, 256)
        assert lr.size_px == 64
    assert models["lr_pixels_fused"].input == "fusion"
    assert len(models["lr_pixels_fused"].feature_columns) == 3
    cnn, fused = models["resnet18"], models["resnet18_fusion"]
    assert (cnn.depth, cnn.optimizer, cnn.learning_rate, cnn.batch_size, cnn.epochs) == (
        18,
        "adam",
        1e-4,
        16,
        3,
    )
    assert (cnn.gradcam_layer, cnn.gradcam_target) == ("layer4", "predicted")
    assert fused.input == "fusion" and fused.feature_columns == lr.feature_columns
    vae = models["vae"]
    assert (vae.depth, vae.width, vae.max_width, vae.latent_size, vae.decoder) == (
        5,
        32,
        512,
        32,
        "bernoulli",
    )
    assert config.evaluate.kmeans_clusters == 2
    published = {(p.model, p.metric) for p in config.report.published}
    assert ("lr_pixels", "accuracy") in published and ("resnet18", "silhouette_kmeans") in published
