"""Report figures: each writes a non-empty PNG and PDF; the KL quartile lines sit right."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import disk

from cellbench.report.figures import (
    confusion_figure,
    kl_histogram_figure,
    parse_well,
    plate_heatmap_figure,
    plate_heatmaps_figure,
    save_figure,
    training_curves_figure,
)
from cellbench.report.figures_embedding import embedding_figure, umap_embedding
from cellbench.report.figures_images import (
    crop_montage_figure,
    gradcam_figure,
    rgb_composite,
    segmentation_overlay_figure,
)


def assert_written(paths, stem):
    assert [p.name for p in paths] == [f"{stem.name}.png", f"{stem.name}.pdf"]
    png, pdf = paths
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1000
    assert not list(stem.parent.glob(".*tmp-*"))


@pytest.fixture
def crops():
    rng = np.random.default_rng(0)
    images = rng.integers(100, 400, size=(30, 3, 24, 24)).astype(np.uint16)
    labels = np.array(["a", "b", "c"] * 10)
    for k, label in enumerate(labels):
        rr, cc = disk((12, 12), 4 + "abc".index(label) * 2, shape=(24, 24))
        images[k, 0, rr, cc] += 2000
    return images, labels


def test_kl_histogram_has_lines_at_the_quartiles(tmp_path):
    kl = np.random.default_rng(1).gamma(2.0, 0.4, size=1531)
    fig = kl_histogram_figure(kl, unit="protein")
    (ax,) = fig.axes
    vertical = [line.get_xdata() for line in ax.get_lines()]
    assert len(vertical) == 3
    positions = [float(x[0]) for x in vertical]
    assert all(x[0] == x[1] for x in vertical)
    assert positions == pytest.approx(np.percentile(kl, [25, 50, 75]))
    assert sum(p.get_height() for p in ax.patches) == len(kl)
    stem = tmp_path / "kl_histogram"
    assert_written(save_figure(fig, stem), stem)


def test_kl_histogram_rejects_non_finite():
    with pytest.raises(ValueError, match="finite"):
        kl_histogram_figure([0.1, np.nan])


def test_confusion_and_training_curves(tmp_path):
    fig = confusion_figure(np.array([[5, 1], [2, 7]]), ["a", "b"], "rf")
    assert_written(
        save_figure(fig, tmp_path / "confusion_rf.seed0"), tmp_path / "confusion_rf.seed0"
    )
    history = {
        "epochs": [
            {"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e if e > 1 else None}
            for e in range(1, 6)
        ],
        "best_epoch": 5,
    }
    fig = training_curves_figure(history, title="cnn seed 0")
    train, val, best = fig.axes[0].get_lines()
    assert list(train.get_xdata()) == [1, 2, 3, 4, 5]
    assert np.isnan(val.get_ydata()[0]) and val.get_ydata()[4] == pytest.approx(0.24)
    assert list(best.get_xdata()) == [5, 5]
    assert_written(save_figure(fig, tmp_path / "training"), tmp_path / "training")


def test_plate_heatmap_is_sized_to_the_wells_present(tmp_path):
    counts = {"A01": 10, "B03": 25, "b02": 7}
    fig = plate_heatmap_figure(counts)
    image = fig.axes[0].images[0].get_array()
    assert image.shape == (2, 3)
    assert image[1, 2] == 25 and image[1, 1] == 7 and np.ma.is_masked(image[0, 1])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["A", "B"]
    assert_written(save_figure(fig, tmp_path / "plate"), tmp_path / "plate")
    assert parse_well("P24") == (15, 23)
    with pytest.raises(ValueError, match="'Q01' is not a plate well"):
        parse_well("Q01")


def test_plates_share_one_figure_and_one_colour_scale(tmp_path):
    counts = {"P1": {"A01": 4, "B02": 8}, "P2": {"A03": 2}, "P3": {"A01": 1}}
    fig = plate_heatmaps_figure(counts, columns=2)
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in panels] == ["P1", "P2", "P3"]
    assert {ax.images[0].get_array().shape for ax in panels} == {(2, 3)}  # the union grid
    assert {ax.images[0].get_clim() for ax in panels} == {(0, 8)}
    second = panels[1].images[0].get_array()
    assert second[0, 2] == 2 and np.ma.is_masked(second[0, 0])
    assert sum(not ax.axison for ax in fig.axes) == 1  # the fourth panel is blank
    assert_written(save_figure(fig, tmp_path / "plates"), tmp_path / "plates")
    with pytest.raises(ValueError, match="no plate"):
        plate_heatmaps_figure({})


def test_umap_embedding_is_seeded_and_plotted(tmp_path, crops):
    rng = np.random.default_rng(2)
    labels = np.repeat(["x", "y"], 20)
    features = rng.normal(size=(40, 8)) + (labels == "y")[:, None] * 4
    coords = umap_embedding(features, seed=0)
    assert coords.shape == (40, 2)
    np.testing.assert_allclose(coords, umap_embedding(features, seed=0))
    fig = embedding_figure(coords, labels, title="UMAP")
    assert len(fig.axes[0].collections) == 2
    assert_written(save_figure(fig, tmp_path / "umap"), tmp_path / "umap")


@pytest.mark.parametrize("n", [2, 3, 5])
def test_umap_embedding_of_few_points(n):
    coords = umap_embedding(np.random.default_rng(3).normal(size=(n, 4)), seed=0)
    assert coords.shape == (n, 2) and np.isfinite(coords).all()


def test_crop_montage_one_row_per_class(tmp_path, crops):
    images, labels = crops
    fig = crop_montage_figure(images, labels, per_class=4, seed=0)
    assert len(fig.axes) == 3 * 4
    assert sum(len(ax.images) for ax in fig.axes) == 12
    assert_written(save_figure(fig, tmp_path / "montage"), tmp_path / "montage")


def test_rgb_composite_scales_and_colours():
    image = np.stack([np.full((2, 2), 10.0), np.full((2, 2), 0.0)])
    rgb = rgb_composite(image, low=[0, 0], high=[10, 10])
    assert rgb.shape == (2, 2, 3) and rgb.max() <= 1.0
    np.testing.assert_allclose(rgb[0, 0], [0.0, 0.4, 1.0])
    grey = rgb_composite(image[:1], low=[0], high=[20])
    np.testing.assert_allclose(grey[0, 0], [0.5, 0.5, 0.5])


def test_segmentation_overlay_and_gradcam(tmp_path, crops):
    field = np.zeros((64, 64))
    labels = np.zeros((64, 64), dtype=np.int32)
    for k, centre in enumerate([(16, 16), (40, 44)], start=1):
        rr, cc = disk(centre, 8, shape=field.shape)
        field[rr, cc] = 100
        labels[rr, cc] = k
    fig = segmentation_overlay_figure([field, np.stack([field, field / 2])], [labels, labels])
    assert [ax.get_title() for ax in fig.axes] == ["2 objects", "2 objects"]
    outlined = fig.axes[0].images[0].get_array()
    assert tuple(outlined[16, 9]) == pytest.approx((1.0, 0.85, 0.0))
    assert_written(save_figure(fig, tmp_path / "overlay"), tmp_path / "overlay")
    images, _ = crops
    heat = np.random.default_rng(4).random((4, 24, 24))
    fig = gradcam_figure(images[:4], heat, titles=["a / a", "b / c", "c / c", "a / b"])
    assert len(fig.axes) == 8
    assert_written(save_figure(fig, tmp_path / "gradcam"), tmp_path / "gradcam")


def test_gradcam_stats_figure_boxes_the_first_ten_classes(tmp_path):
    from cellbench.models.gradcam import save_gradcam
    from cellbench.paths import ResultsPaths
    from cellbench.report.figures import gradcam_stats_figure
    from cellbench.report.gallery import gradcam_figures

    rng = np.random.default_rng(0)
    labels = np.array([f"c{i:02d}" for i in range(12)] * 3)  # 12 classes: 10 get a box
    mean, coverage = rng.uniform(size=36), rng.uniform(size=36)
    coverage[0] = np.nan  # an empty mask is left out
    fig = gradcam_stats_figure(mean, coverage, labels)
    hist, box = fig.axes[0], fig.axes[1]
    assert sum(p.get_height() for p in hist.patches) == 36
    assert sum(p.get_height() for p in fig.axes[2].patches) == 35
    assert [t.get_text() for t in box.get_xticklabels()] == [f"c{i:02d}" for i in range(10)]
    assert "first 10 of 12" in box.get_title()
    # matplotlib draws 7 lines per box: box, 2 whiskers, 2 caps, median, fliers
    medians = [line.get_ydata()[0] for line in box.lines[5::7]]
    np.testing.assert_allclose(medians, [np.median(mean[labels == f"c{i:02d}"]) for i in range(10)])

    paths = ResultsPaths(tmp_path)
    paths.gradcam_maps("cnn", 0).parent.mkdir(parents=True)
    maps = np.zeros((36, 4, 4), np.float32)
    save_gradcam(
        maps, paths.gradcam_maps("cnn", 0), label=labels, mean_activation=mean, coverage=coverage
    )

    class Entry:
        name = "cnn"

    written = gradcam_figures(paths, [Entry()], 0)
    assert [p.name for p in written] == ["gradcam_stats_cnn.png"]
