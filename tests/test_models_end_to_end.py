"""Every model type through train, evaluate and the report: the demo, and BBBC021's real crops."""

import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from cellbench.config import MODEL_TYPES, config_from_dict, default_data_root
from cellbench.execution.run import execute
from cellbench.paths import ResultsPaths
from tests.helpers import REPO


def load_yaml_config(name: str, results_root, **changes):
    raw = yaml.safe_load((REPO / "configs" / name).read_text())
    raw["results_root"] = str(results_root)
    raw.update(changes)
    return raw


def run_all(raw: dict):
    config = config_from_dict(raw)
    results = execute(config, "all", "local", echo=lambda line: None).results
    failed = [f"{r.stage}/{r.task}: {r.message}" for r in results if not r.ok]
    assert failed == []
    return config, ResultsPaths(config.results_root)


def metrics(paths: ResultsPaths, model: str, seed: int = 0) -> dict:
    return json.loads(paths.metrics(model, seed).read_text())


def test_demo_runs_every_model_type_and_its_report_renders(tmp_path):
    from tests.report.test_html import chromium_or_skip, run_chromium

    raw = load_yaml_config("demo.yaml", tmp_path / "results", seeds=[0])
    raw["data"]["input"]["plates"] = 1
    config, paths = run_all(raw)
    assert {m.type for m in config.models} == set(MODEL_TYPES)
    classifiers = ("rf", "svm", "gb", "logreg_fusion", "mlp", "logreg_torch", "resnet")
    for model in (*classifiers, "logreg_on_resnet"):
        result = metrics(paths, model)
        assert result["accuracy"] > result["majority_rate"], (model, result)
    for model in ("resnet", "vae"):
        embeddings = pd.read_parquet(paths.embeddings(model, 0))
        assert embeddings["Metadata_CellId"].is_unique
        assert {"split", "Metadata_Condition", "embedding_000"} <= set(embeddings.columns)
        assert -1 <= metrics(paths, model)["silhouette"] <= 1
        assert -1 <= metrics(paths, model)["silhouette_kmeans"] <= 1
        assert metrics(paths, model)["kmeans_clusters"] == 3  # the demo's three conditions
        assert 0 < metrics(paths, model)["map"] <= 1
        mmd = pd.read_csv(paths.mmd_table(model, 0))  # between the three conditions
        between = mmd[mmd["group_a"] != mmd["group_b"]]
        assert len(between) == 3 and (mmd["group_a"] == mmd["group_b"]).sum() == 3
        assert metrics(paths, model)["mmd2_between"] > metrics(paths, model)["mmd2_within"]
    probe = pd.read_parquet(paths.split_file("logreg_on_resnet", 0))
    resnet_split = pd.read_parquet(paths.split_file("resnet", 0))
    assert probe.equals(resnet_split)  # the probe never trains on the ResNet's test cells
    assert metrics(paths, "vae")["reconstruction_mse"] < 0.1  # crops are scaled to [0, 1]
    generated = metrics(paths, "cp2image")
    assert 0 < generated["ssim"] <= 1 and generated["generated_features_n_features"] > 0
    gradcam = np.load(paths.model_dir("resnet", 0) / "gradcam.npz")
    maps = gradcam["maps"]
    assert maps.shape[1:] == (32, 32) and 0 <= maps.min() and maps.max() <= 1
    usage = pd.read_csv(paths.latent_usage("vae", 0))  # the VAE's latent analyses
    vae_entry = next(m for m in config.models if m.name == "vae")
    assert len(usage) == vae_entry.latent_size and (usage["kl"] >= 0).all()
    assert metrics(paths, "vae")["latent_dimensions_used"] == (usage["kl"] > 0.01).sum()
    grids = np.load(paths.latent_grids("vae", 0))
    side = (vae_entry.size_px, vae_entry.size_px)
    assert grids["reconstructions"].shape[0] == len(grids["labels"]) == vae_entry.analysis_cells
    assert grids["originals"].shape == grids["reconstructions"].shape
    assert grids["originals"].shape[2:] == side and grids["traversal"].shape[-2:] == side
    assert 0 <= grids["traversal"].min() and grids["traversal"].max() <= 1
    summary = metrics(paths, "resnet")["gradcam"]
    assert summary["coverage"] == pytest.approx(np.nanmean(gradcam["coverage"]))
    assert 0 < summary["mean_activation"] <= 1
    history = json.loads(paths.history("resnet", 0).read_text())
    assert history["epochs"] and history["best_epoch"] >= 1

    report = paths.report_dir
    for name in ("accuracy.csv", "accuracy.tex", "representations.csv", "generation.csv"):
        assert (report / name).stat().st_size > 0
    # every classifier's per-class report; ROC and PR curves where it gives probabilities
    per_class = pd.read_csv(report / "classification_report.csv")
    assert set(per_class["class"]) == set(metrics(paths, "rf")["classes"])
    assert set(per_class["model"]) == {m.name for m in config.models if m.type != "cp2image"}
    assert per_class["specificity"].between(0, 1).all()
    assert 0.5 < metrics(paths, "rf")["roc_auc_macro"] <= 1
    assert (report / "curves_rf.png").stat().st_size > 0
    accuracy = pd.read_csv(report / "accuracy.csv")
    classifiers = {m.name for m in config.models if m.type != "cp2image"}
    assert set(accuracy["model"]) == classifiers  # the VAE through its linear probe
    figures = sorted(p.name for p in report.rglob("*.png"))
    for stem in (
        "confusion_rf",
        "umap_resnet",
        "gradcam_resnet",
        "gradcam_stats_resnet",
        "training_vae",
        "montage_",
        "mmd_vae",
        "latent_usage_vae",
        "latent_traversal_vae",
        "latent_interpolation_vae",
        "latent_sensitivity_vae",
        "reconstructions_vae",
        "generation_grid_cp2image",
        "pca_resnet",
        "tsne_vae",
        "clustermap_resnet",
        "neighbours_vae",
    ):
        assert any(name.startswith(stem) for name in figures), (stem, figures)

    kl = pd.read_csv(report / "kl_resnet_original_vs_resnet_masked.csv")
    test_cells = pd.read_parquet(paths.predictions("resnet_masked", 0))["split"].eq("test").sum()
    assert len(kl) == test_cells and (kl["kl"] >= 0).all() and kl["kl"].max() > 0
    assert (report / "kl_resnet_original_vs_resnet_masked.png").stat().st_size > 0
    study = pd.read_csv(report / "background_study" / "table1.csv")
    assert set(study["experiment"]) == {"base", "mask", "same", "diff", "batch"}
    assert study["mean"].between(0, 1).all()
    published = pd.read_csv(report / "background_study" / "crops" / "results_diff.csv")
    assert list(published.columns) == ["Location1", "Location2", "Background", "Accuracy", "StdDev"]

    chromium = chromium_or_skip()
    done = run_chromium(
        chromium,
        tmp_path / "profile",
        "--virtual-time-budget=10000",
        "--dump-dom",
        (report / "index.html").resolve().as_uri(),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    check = dict(re.findall(r'data-([\w-]+)="(\d+)"', done.stdout))
    assert check["images-broken"] == "0"
    assert int(check["images-loaded"]) == len(figures)
    tables = ("accuracy", "per-class-accuracy", "representations", "generation")
    for table in (
        *tables,
        "background-study-table-1",
        "kl-resnet-original-vs-resnet-masked",
        "mmd-resnet",
        "mmd-vae",
    ):
        assert f'id="table-{table}"' in done.stdout
    # the page opens with the answer: the best model and input, before every other section
    summary = re.search(r'<section id="summary">(.*?)</section>', done.stdout, re.S)
    best = pd.read_csv(report / "accuracy.csv").sort_values("accuracy_mean").iloc[-1]
    assert summary is not None
    assert f"accuracy on held-out cells: {best['model']} ({best['input']})" in summary.group(1)
    assert done.stdout.index('id="summary"') < done.stdout.index('id="section-tables"')


@pytest.mark.skipif(not (default_data_root() / "bbbc021").is_dir(), reason="no BBBC021 data")
def test_bbbc021_random_forest_and_resnet_beat_the_majority_class(tmp_path):
    raw = load_yaml_config("bbbc021.yaml", tmp_path / "results")
    config, paths = run_all(raw)
    for model in ("rf_by_plate", "resnet_by_plate"):
        result = metrics(paths, model)
        print(model, result["accuracy"], result["majority_rate"])
        assert result["accuracy"] > result["majority_rate"] + 0.05, (model, result)
    for model, column in (
        ("rf_by_plate", "Metadata_Plate"),
        ("rf_by_compound", "Metadata_Compound"),
    ):
        predictions = pd.read_parquet(paths.predictions(model, 0))
        assert (predictions.groupby(column)["split"].nunique() == 1).all()  # no leak
    compound = metrics(paths, "rf_by_compound")
    assert compound["accuracy"] > compound["majority_rate"]
