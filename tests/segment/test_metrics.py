"""Instance segmentation scores on hand-made label images and on the real DSB 2018 nuclei."""

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from skimage.filters import threshold_otsu
from skimage.measure import label
from skimage.segmentation import relabel_sequential

from cellbench.segment.evaluate import evaluate_folder, format_report, pair_files, read_image
from cellbench.segment.metrics import iou_matrix, match_at, score_image, summarise

DATA = Path(
    os.environ.get("CELLBENCH_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data")
)
DSB = DATA / "dsb2018"
needs_dsb = pytest.mark.skipif(not (DSB / "index.csv").exists(), reason="no DSB 2018 data")

SCALAR_KEYS = ("n_true", "n_predicted", "tp", "fp", "fn", "precision", "recall", "f1", "ap_50_95")


def squares(shape=(40, 40), boxes=()):
    """A label image with rectangle objects: boxes of (label, y0, y1, x0, x1)."""
    image = np.zeros(shape, np.int32)
    for value, y0, y1, x0, x1 in boxes:
        image[y0:y1, x0:x1] = value
    return image


def brute_force_iou(truth, predicted):
    t_labels = [v for v in np.unique(truth) if v != 0]
    p_labels = [v for v in np.unique(predicted) if v != 0]
    iou = np.zeros((len(t_labels), len(p_labels)))
    for i, t in enumerate(t_labels):
        for j, p in enumerate(p_labels):
            a, b = truth == t, predicted == p
            iou[i, j] = (a & b).sum() / (a | b).sum()
    return np.array(t_labels), np.array(p_labels), iou


# --- iou_matrix ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_iou_matrix_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    values_t = np.array([0, 0, 3, 7, 300, 65535])
    values_p = np.array([0, 1, 2, 9, 1000])
    truth = values_t[rng.integers(0, len(values_t), (12, 15))].astype(np.uint16)
    predicted = values_p[rng.integers(0, len(values_p), (12, 15))].astype(np.int64)
    t, p, iou = iou_matrix(truth, predicted)
    bt, bp, biou = brute_force_iou(truth, predicted)
    np.testing.assert_array_equal(t, bt)
    np.testing.assert_array_equal(p, bp)
    assert iou.dtype == np.float64
    np.testing.assert_allclose(iou, biou, rtol=0, atol=1e-12)


def test_iou_matrix_with_huge_and_negative_labels():
    rng = np.random.default_rng(1)
    values = np.array([0, -5, 2**40, 17], np.int64)
    truth = values[rng.integers(0, 4, (9, 9))]
    predicted = rng.integers(0, 4, (9, 9)).astype(np.uint64)
    for a, b in zip(iou_matrix(truth, predicted), brute_force_iou(truth, predicted), strict=True):
        np.testing.assert_allclose(a, b)


def test_iou_matrix_empty_and_shape_mismatch():
    t, p, iou = iou_matrix(np.zeros((5, 5), int), squares((5, 5), [(4, 0, 2, 0, 2)]))
    assert t.shape == (0,) and p.tolist() == [4] and iou.shape == (0, 1)
    with pytest.raises(ValueError, match="shape"):
        iou_matrix(np.zeros((5, 5), int), np.zeros((5, 6), int))
    with pytest.raises(ValueError, match="integer"):
        iou_matrix(np.zeros((5, 5)) + 0.5, np.zeros((5, 5), int))


# --- match_at --------------------------------------------------------------------------------


def test_match_at_counts_strictly_above_threshold():
    iou = np.array([[0.5, 0.0], [0.0, 0.51], [0.2, 0.0]])
    assert match_at(iou, 0.5) == 1
    assert match_at(iou, 0.95) == 0
    assert match_at(np.zeros((0, 3)), 0.5) == 0
    assert match_at(np.zeros((0, 3)), 0.1) == 0


def test_match_at_low_threshold_finds_most_one_to_one_matches():
    # Maximising total IoU would take only the 0.9 pair; two pairs pass 0.3.
    iou = np.array([[0.9, 0.35], [0.35, 0.0]])
    assert match_at(iou, 0.3) == 2
    # One predicted object overlapping two true ones still counts once.
    assert match_at(np.array([[0.4], [0.45]]), 0.3) == 1


# --- score_image on hand-made cases ----------------------------------------------------------


def test_identical_images_score_one():
    truth = squares(boxes=[(1, 0, 10, 0, 10), (2, 20, 30, 5, 15), (3, 12, 18, 25, 39)])
    score = score_image(truth, truth)
    assert score["n_true"] == score["n_predicted"] == score["tp"] == 3
    assert score["fp"] == score["fn"] == 0
    assert score["precision"] == score["recall"] == score["f1"] == score["ap_50_95"] == 1.0
    assert list(score["ap_by_threshold"]) == [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]


def test_shifted_prediction_by_hand():
    # A 10x10 square shifted 2 px: intersection 80, union 120, IoU 2/3.
    truth = squares(boxes=[(1, 5, 15, 5, 15)])
    predicted = squares(boxes=[(1, 5, 15, 7, 17)])
    _, _, iou = iou_matrix(truth, predicted)
    assert iou[0, 0] == pytest.approx(2 / 3)
    score = score_image(truth, predicted)
    assert (score["tp"], score["fp"], score["fn"]) == (1, 0, 0)
    assert score["f1"] == 1.0
    # Matched at 0.5, 0.55, 0.6, 0.65 (score 1 each), missed above (0 / (0 + 1 + 1)).
    assert score["ap_50_95"] == pytest.approx(0.4)
    assert score["ap_by_threshold"][0.65] == 1.0 and score["ap_by_threshold"][0.7] == 0.0


def test_average_precision_by_hand():
    truth = squares((30, 30), [(1, 0, 10, 0, 10), (2, 12, 17, 0, 10), (3, 20, 25, 20, 30)])
    predicted = np.zeros_like(truth)
    predicted[truth == 1] = 1  # exact: IoU 1
    b_pixels = np.flatnonzero(truth.ravel() == 2)[:39]
    predicted.ravel()[b_pixels] = 2  # 39 of 50 pixels of object 2: IoU 0.78
    predicted[0:5, 20:30] = 3  # nothing underneath: a false positive; object 3 is missed
    score = score_image(truth, predicted)
    assert (score["n_true"], score["n_predicted"]) == (3, 3)
    assert (score["tp"], score["fp"], score["fn"]) == (2, 1, 1)
    assert score["precision"] == score["recall"] == score["f1"] == pytest.approx(2 / 3)
    # Thresholds 0.5 ... 0.75 (6): TP 2, FP 1, FN 1 -> 2/4. Thresholds 0.8 ... 0.95 (4):
    # TP 1, FP 2, FN 2 -> 1/5. Mean: (6 * 0.5 + 4 * 0.2) / 10 = 0.38.
    assert score["ap_50_95"] == pytest.approx(0.38)
    assert score["ap_by_threshold"][0.75] == pytest.approx(0.5)
    assert score["ap_by_threshold"][0.8] == pytest.approx(0.2)
    custom = score_image(truth, predicted, thresholds=[0.5, 0.9])
    assert custom["ap_50_95"] == pytest.approx(0.35)
    assert list(custom["ap_by_threshold"]) == [0.5, 0.9]


def test_merged_prediction():
    truth = squares(boxes=[(1, 0, 10, 0, 5), (2, 0, 10, 5, 10)])  # 50 + 50 px
    merged = squares(boxes=[(1, 0, 10, 0, 10)])  # IoU 0.5 with each: not > 0.5
    score = score_image(truth, merged)
    assert (score["n_true"], score["n_predicted"]) == (2, 1)
    assert (score["tp"], score["fp"], score["fn"]) == (0, 1, 2)
    assert score["f1"] == score["ap_50_95"] == 0.0
    unequal = squares(boxes=[(1, 0, 10, 0, 6), (2, 0, 10, 6, 10)])  # 60 + 40 px: IoU 0.6, 0.4
    score = score_image(unequal, merged)
    assert (score["tp"], score["fp"], score["fn"]) == (1, 0, 1)
    assert score["precision"] == 1.0 and score["recall"] == 0.5
    assert score["f1"] == pytest.approx(2 / 3)


def test_split_prediction():
    truth = squares(boxes=[(1, 0, 10, 0, 10)])
    halves = squares(boxes=[(1, 0, 10, 0, 5), (2, 0, 10, 5, 10)])
    score = score_image(truth, halves)
    assert (score["tp"], score["fp"], score["fn"]) == (0, 2, 1)
    unequal = squares(boxes=[(1, 0, 10, 0, 6), (2, 0, 10, 6, 10)])
    score = score_image(truth, unequal)
    assert (score["tp"], score["fp"], score["fn"]) == (1, 1, 0)
    assert score["precision"] == 0.5 and score["recall"] == 1.0


def test_empty_cases_never_nan():
    empty = np.zeros((20, 20), np.uint16)
    objects = squares((20, 20), [(1, 0, 5, 0, 5), (2, 10, 15, 10, 15)])
    both = score_image(empty, empty)
    assert (both["n_true"], both["n_predicted"], both["tp"], both["fp"], both["fn"]) == (0,) * 5
    assert both["precision"] == both["recall"] == both["f1"] == both["ap_50_95"] == 1.0
    missed = score_image(objects, empty)
    assert (missed["tp"], missed["fp"], missed["fn"]) == (0, 0, 2)
    hallucinated = score_image(empty, objects)
    assert (hallucinated["tp"], hallucinated["fp"], hallucinated["fn"]) == (0, 2, 0)
    for score in (missed, hallucinated):
        assert score["precision"] == score["recall"] == score["f1"] == score["ap_50_95"] == 0.0
    for score in (both, missed, hallucinated):
        assert not any(np.isnan(score[key]) for key in SCALAR_KEYS)


def test_labels_need_not_be_consecutive():
    truth = squares(boxes=[(7, 0, 10, 0, 10), (300, 20, 30, 20, 30), (12, 0, 8, 30, 38)])
    predicted = squares(boxes=[(300, 1, 11, 0, 10), (7, 22, 30, 20, 31), (5, 30, 35, 0, 5)])
    t, p, _ = iou_matrix(truth, predicted)
    assert t.tolist() == [7, 12, 300] and p.tolist() == [5, 7, 300]
    relabelled_truth = relabel_sequential(truth)[0]
    relabelled_pred = relabel_sequential(predicted)[0]
    assert relabelled_truth.max() == 3
    original = score_image(truth, predicted)
    relabelled = score_image(relabelled_truth, relabelled_pred)
    assert original == relabelled
    assert (original["tp"], original["fp"], original["fn"]) == (2, 1, 1)
    boolean = score_image(truth > 0, predicted > 0)  # a bool mask is one object
    assert boolean["n_true"] == 1


def test_summarise_means_and_pooled_counts():
    perfect = {
        "n_true": 10,
        "n_predicted": 10,
        "tp": 10,
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "ap_50_95": 1.0,
        "ap_by_threshold": {0.5: 1.0},
        "seconds": 1.0,
    }
    poor = {
        "n_true": 30,
        "n_predicted": 10,
        "tp": 5,
        "precision": 0.5,
        "recall": 1 / 6,
        "f1": 0.25,
        "ap_50_95": 0.2,
        "ap_by_threshold": {0.5: 0.0},
        "seconds": 2.0,
    }
    summary = summarise([perfect, poor])
    assert summary["n_images"] == 2
    assert summary["mean_f1"] == pytest.approx(0.625)
    assert summary["mean_precision"] == pytest.approx(0.75)
    assert summary["mean_recall"] == pytest.approx(7 / 12)
    assert summary["mean_ap_50_95"] == pytest.approx(0.6)
    assert (summary["tp"], summary["fp"], summary["fn"]) == (15, 5, 25)
    assert summary["pooled_precision"] == pytest.approx(15 / 20)
    assert summary["pooled_recall"] == pytest.approx(15 / 40)
    assert summary["pooled_f1"] == pytest.approx(30 / 60)
    assert summary["mean_ap_by_threshold"] == {0.5: 0.5}
    assert summary["seconds"] == 3.0
    empty = score_image(np.zeros((4, 4), int), np.zeros((4, 4), int))
    assert summarise([empty])["pooled_f1"] == 1.0
    with pytest.raises(ValueError):
        summarise([])


# --- real DSB 2018 data ----------------------------------------------------------------------


@needs_dsb
def test_real_masks_score_perfectly_against_themselves():
    index = pd.read_csv(DSB / "index.csv", dtype={"short_id": str}).set_index("short_id")
    pairs = pair_files(DSB / "images", DSB / "masks")
    assert len(pairs) == 30 == len(index)
    for image_path, mask_path in pairs:
        assert image_path.stem == mask_path.stem
        mask = tifffile.imread(mask_path)
        score = score_image(mask, mask)
        assert score["n_true"] == index.loc[mask_path.stem, "n_nuclei"], mask_path.name
        assert score["f1"] == 1.0 and score["ap_50_95"] == 1.0
        assert tuple(index.loc[mask_path.stem, ["height", "width"]]) == mask.shape


@needs_dsb
def test_missing_mask_is_named(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    shutil.copytree(DSB / "images", images)
    shutil.copytree(DSB / "masks", masks)
    missing = sorted(masks.glob("*.tif"))[7]
    missing.unlink()
    with pytest.raises(ValueError, match=missing.name) as error:
        pair_files(images, masks)
    assert "without a mask" in str(error.value)
    extra = sorted(images.glob("*.tif"))[3]
    extra.unlink()
    (images / missing.name).unlink()
    with pytest.raises(ValueError, match=f"without an image: {extra.name}$"):
        pair_files(images, masks)


def test_pairing_is_by_name_not_position(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for name in ("a", "b"):
        tifffile.imwrite(images / f"{name}.tif", np.zeros((4, 4), np.uint8))
    tifffile.imwrite(masks / "b.tiff", np.zeros((4, 4), np.uint16))
    tifffile.imwrite(masks / "a.tif", np.zeros((4, 4), np.uint16))
    (masks / "notes.txt").write_text("not an image")
    pairs = pair_files(images, masks)
    assert [(i.name, m.name) for i, m in pairs] == [("a.tif", "a.tif"), ("b.tif", "b.tiff")]


def test_rgb_images_become_one_channel(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[2:5, 2:5, 1] = 200
    rgba = np.concatenate([rgb, np.full((8, 8, 1), 255, np.uint8)], axis=-1)
    tifffile.imwrite(images / "rgb.tif", rgb, photometric="rgb")
    tifffile.imwrite(images / "rgba.tif", rgba, photometric="rgb", extrasamples=["unassalpha"])
    tifffile.imwrite(images / "grey.tif", rgb[..., 1])
    for name in ("rgb", "rgba", "grey"):
        tifffile.imwrite(masks / f"{name}.tif", (rgb[..., 1] > 0).astype(np.uint16))
        np.testing.assert_array_equal(read_image(images / f"{name}.tif"), rgb[..., 1])
    seen = []

    def predict(image):
        seen.append(image.shape)
        return label(image > 100)

    result = evaluate_folder(images, masks, predict, progress=False)
    assert seen == [(8, 8)] * 3
    assert [r["f1"] for r in result["images"]] == [1.0, 1.0, 1.0]


@needs_dsb
def test_evaluate_folder_with_otsu_on_real_data(capsys):
    def otsu(image):
        return label(image > threshold_otsu(image))

    result = evaluate_folder(DSB / "images", DSB / "masks", otsu, progress=True)
    assert len(result["images"]) == 30
    assert len({r["name"] for r in result["images"]}) == 30
    overall = result["overall"]
    assert overall["n_images"] == 30 and overall["n_true"] == 2130
    for key in (
        "mean_f1",
        "mean_precision",
        "mean_recall",
        "mean_ap_50_95",
        "pooled_f1",
        "pooled_precision",
        "pooled_recall",
    ):
        assert 0.0 <= overall[key] <= 1.0, key
    # Otsu + connected components: a weak but far from useless baseline.
    assert 0.5 < overall["mean_f1"] < 0.95
    assert overall["mean_ap_50_95"] < overall["mean_f1"]
    assert all(r["seconds"] >= 0 for r in result["images"])
    assert "segment" in capsys.readouterr().err  # the tqdm bar went to stderr
    report = format_report(result)
    lines = report.splitlines()
    assert len(lines) == 2 + 30 + 3
    assert all(r["name"] in report for r in result["images"])
    assert "overall (mean)" in report and "overall (pooled)" in report
    assert f"{overall['mean_f1']:.3f}" in lines[-2]


@needs_dsb
def test_prediction_of_wrong_shape_is_an_error():
    with pytest.raises(ValueError, match="differs from mask"):
        evaluate_folder(
            DSB / "images", DSB / "masks", lambda image: np.zeros((3, 3), int), progress=False
        )
