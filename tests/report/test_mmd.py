"""The report's MMD tables and heatmaps: each pair of groups averaged over seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cellbench.config import VAEModel
from cellbench.evaluate.distributions import group_mmd
from cellbench.paths import ResultsPaths
from cellbench.report.figures import mmd_heatmap_figure, save_figure
from cellbench.report.mmd import mmd_across_seeds, mmd_report


def seed_table(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    embeddings = np.vstack([rng.normal(size=(40, 3)), rng.normal(loc=1.0, size=(40, 3))])
    groups = np.repeat(["ctrl", "drug"], 40)
    return group_mmd(embeddings, groups, n_bootstrap=5, seed=seed)


def test_pairs_are_averaged_over_seeds():
    tables = [seed_table(0), seed_table(1)]
    table = mmd_across_seeds(tables).set_index(["group_a", "group_b"])
    assert list(table.index) == [("ctrl", "ctrl"), ("ctrl", "drug"), ("drug", "drug")]
    assert (table["n_seeds"] == 2).all()
    both = [t.set_index(["group_a", "group_b"]).loc[("ctrl", "drug")] for t in tables]
    row = table.loc[("ctrl", "drug")]
    assert row["mmd2_mean"] == pytest.approx(np.mean([b["mmd2"] for b in both]))
    assert row["mmd2_sd"] == pytest.approx(np.std([b["mmd2"] for b in both], ddof=1))
    assert row["ci_low_mean"] == pytest.approx(np.mean([b["ci_low"] for b in both]))
    assert row["mmd2_mean"] > 5 * abs(table.loc[("ctrl", "ctrl"), "mmd2_mean"])
    assert mmd_across_seeds([]).empty and mmd_across_seeds([tables[0].iloc[:0]]).empty


def test_report_reads_each_models_seeds_and_draws_the_heatmap(tmp_path):
    paths = ResultsPaths(tmp_path)
    for seed in (0, 1):
        path = paths.mmd_table("vae", seed)
        path.parent.mkdir(parents=True)
        seed_table(seed).to_csv(path, index=False)
    models = [
        VAEModel(name="vae", crop_kind="whole_cell"),
        VAEModel(name="other", crop_kind="whole_cell"),  # never evaluated: left out
    ]
    tables, figures = mmd_report(paths, models, seeds=[0, 1, 2])
    assert list(tables) == ["mmd vae"]
    assert (tables["mmd vae"]["n_seeds"] == 2).all()
    assert [p.name for p in figures] == ["mmd_vae.png"]
    assert figures[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths.report_figure("mmd_vae").with_suffix(".pdf").stat().st_size > 1000


def test_heatmap_is_symmetric_with_the_within_group_diagonal(tmp_path):
    table = pd.DataFrame(
        {
            "group_a": ["a", "a", "b", "a"],
            "group_b": ["b", "c", "c", "a"],
            "mmd2_mean": [0.5, 0.1, 0.3, 0.01],
        }
    )
    fig = mmd_heatmap_figure(table, title="t")
    grid = fig.axes[0].images[0].get_array()
    assert grid.shape == (3, 3)
    assert grid[0, 1] == grid[1, 0] == 0.5 and grid[2, 1] == 0.3 and grid[0, 0] == 0.01
    assert np.ma.is_masked(grid[1, 1])  # b has no within-group row
    assert len(fig.axes[0].texts) == 7  # every value written out
    written = save_figure(fig, tmp_path / "mmd")
    assert [p.suffix for p in written] == [".png", ".pdf"]
    with pytest.raises(ValueError, match="empty"):
        mmd_heatmap_figure(table.iloc[:0])


def test_the_report_page_holds_each_models_mmd_table_and_heatmap(tmp_path):
    import json

    from cellbench.report.aggregate import build_report
    from tests.helpers import small_config

    models = [{"name": "vae", "type": "vae", "crop_kind": "whole_cell"}]
    config = small_config(tmp_path, models=models, seeds=[0])
    paths = ResultsPaths(config.results_root)
    table = seed_table(0)
    paths.mmd_table("vae", 0).parent.mkdir(parents=True)
    table.to_csv(paths.mmd_table("vae", 0), index=False)
    summary = {"mmd2_between": float(table.mmd2[0]), "mmd2_within": 0.001, "silhouette": 0.2}
    metrics = {"model": "vae", "type": "vae", "input": "crops:whole_cell", "seed": 0, **summary}
    paths.metrics("vae", 0).write_text(json.dumps(metrics))

    build_report(config, [], pd.DataFrame())
    report = paths.report_dir
    written = pd.read_csv(report / "mmd_vae.csv")
    assert set(zip(written.group_a, written.group_b, strict=True)) == {
        ("ctrl", "ctrl"),
        ("ctrl", "drug"),
        ("drug", "drug"),
    }
    assert (report / "mmd_vae.png").stat().st_size > 1000
    page = (report / "index.html").read_text()
    assert 'id="table-mmd-vae"' in page and 'src="mmd_vae.png"' in page
    representations = pd.read_csv(report / "representations.csv").set_index("model")
    assert representations.loc["vae", "mmd2_between_mean"] == pytest.approx(table.mmd2[0])

    config.evaluate.mmd = None  # switched off: no table, no figure
    (report / "mmd_vae.png").unlink()
    build_report(config, [], pd.DataFrame())
    assert 'id="table-mmd-vae"' not in (report / "index.html").read_text()
    assert not (report / "mmd_vae.png").exists()


def test_each_grouping_gets_its_heatmap_and_old_tables_read_as_the_label(tmp_path):
    paths = ResultsPaths(tmp_path)
    path = paths.mmd_table("vae", 0)
    path.parent.mkdir(parents=True)
    by_moa = seed_table(1).assign(group_a=lambda t: "moa " + t.group_a)
    by_moa["group_b"] = "moa " + by_moa["group_b"]
    table = pd.concat(
        [seed_table(0).assign(grouping="label"), by_moa.assign(grouping="Metadata_Moa")]
    )
    table.to_csv(path, index=False)
    tables, figures = mmd_report(paths, [VAEModel(name="vae", crop_kind="whole_cell")], seeds=[0])
    assert [p.name for p in figures] == ["mmd_vae.png", "mmd_vae_moa.png"]
    merged = tables["mmd vae"]
    assert list(dict.fromkeys(merged["grouping"])) == ["label", "Metadata_Moa"]
    assert set(merged.loc[merged.grouping == "Metadata_Moa", "group_a"]) == {"moa ctrl", "moa drug"}

    old = mmd_across_seeds([seed_table(0)])  # written before groupings: no grouping column
    assert set(old["grouping"]) == {"label"} and len(old) == 3
