import os
from pathlib import Path

import numpy as np
import pytest

from cellbench.crops.normalise import crop_percentiles, normalise_crop, normalise_crops

QS = [(1.0, 99.0), (0.0, 100.0), (2.5, 97.5), (25.0, 75.0), (33.3, 66.7)]


def assert_like_numpy(crops, q):
    """crop_percentiles equals np.percentile of every crop and channel, bit for bit."""
    low, high = crop_percentiles(crops, q)
    assert low.shape == high.shape == crops.shape[:2] and low.dtype == np.float64
    for i, crop in enumerate(crops):
        for c, channel in enumerate(crop):
            expected = np.percentile(channel, q)
            assert (low[i, c], high[i, c]) == tuple(expected), (i, c, q)
            # the float64 copy of the same values gives the same percentiles too
            np.testing.assert_array_equal(expected, np.percentile(channel.astype(float), q))


@pytest.mark.parametrize("q", QS)
@pytest.mark.parametrize("dtype", [np.uint16, np.uint8])
def test_histogram_percentiles_equal_numpy_on_random_crops(dtype, q):
    rng = np.random.default_rng(0)
    top = np.iinfo(dtype).max
    for side in (1, 2, 3, 7, 16, 33):
        for high in (1, 9, 300, top):
            crops = rng.integers(0, min(high, top) + 1, (3, 2, side, side)).astype(dtype)
            assert_like_numpy(crops, q)


def test_histogram_percentiles_of_constant_and_zero_channels():
    crops = np.zeros((3, 3, 12, 12), np.uint16)
    crops[1, 1] = 777  # constant
    crops[2, 0] = 65535  # constant at the top of the range
    crops[2, 2, 3:9, 3:9] = 5000  # a masked square: 75% zeros
    for q in QS:
        assert_like_numpy(crops, q)
    low, high = crop_percentiles(crops, (1.0, 99.0))
    assert (low[0] == 0).all() and (high[0] == 0).all()
    assert low[1, 1] == high[1, 1] == 777


@pytest.mark.parametrize("dtype", [np.uint16, np.uint8])
def test_histogram_percentiles_at_the_ends_of_the_range_and_of_the_scans(dtype):
    """Maxima 0 and the dtype's top, ranks among the zeros, rows after brighter rows."""
    top = np.iinfo(dtype).max
    rng = np.random.default_rng(5)
    crops = np.zeros((6, 2, 10, 10), dtype)
    crops[1, 0] = top  # constant at the top: the downward scan starts at its first counter
    crops[1, 1, :, :5] = top  # half zeros, half top: the median falls between the two
    crops[2, 0] = rng.integers(0, top + 1, (10, 10))
    crops[2, 0, 0, 0] = top
    crops[3, 0, :9] = 0  # 90 % masked zeros: every percentile below 90 is 0
    crops[3, 0, 9] = rng.integers(1, top + 1, 10)
    crops[3, 1, 0, 0] = 1  # a single non-zero pixel: 99 % interpolates from 0
    crops[4] = rng.integers(0, 3, (2, 10, 10))  # after brighter rows: no counts left over
    crops[5, 0, 5:] = top  # all pixels 0 or top, ranks on both sides of the switch
    for q in [*QS, (0.0, 0.0), (100.0, 100.0), (49.0, 51.0), (89.9, 90.1), (99.0, 99.99)]:
        assert_like_numpy(crops, q)
    assert_like_numpy(crops[:, :, :1, :1], (1.0, 99.0))  # one pixel per channel
    assert_like_numpy(crops[:, :, :1, :2], (50.0, 50.0))


def test_histogram_percentiles_on_real_crops(real_crops):
    for q in QS[:3]:
        assert_like_numpy(real_crops, q)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_other_dtypes_keep_the_partial_sort_and_equal_numpy(dtype):
    rng = np.random.default_rng(1)
    crops = rng.normal(100, 1000, (4, 3, 9, 9)).astype(dtype)
    crops[0, 0] = 3  # constant
    for q in QS:
        assert_like_numpy(crops, q)


@pytest.mark.parametrize("mode", ["none", "max", "minmax", "percentile", "plate"])
@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_batch_equals_crop_by_crop(mode, dtype):
    rng = np.random.default_rng(2)
    crops = rng.integers(0, 5000, (6, 3, 10, 10)).astype(dtype)
    crops[0, 1] = 0
    crops[1, 2] = 42
    plate = (np.array([10.0, 50.0, 60.0]), np.array([4000.0, 50.0, np.nan]))
    batch = normalise_crops(crops, mode, plate_range=plate)
    out = np.full(crops.shape, -1.0, np.float32)
    assert normalise_crops(crops, mode, plate_range=plate, out=out) is out
    np.testing.assert_array_equal(out, batch)
    for crop, normalised in zip(crops, batch, strict=True):
        single = normalise_crop(crop, mode, plate_range=plate)
        assert single.dtype == np.float32
        np.testing.assert_array_equal(single, normalised)
    if mode != "none":
        assert batch.min() >= 0 and batch.max() <= 1


@pytest.mark.parametrize("mode", ["none", "max", "minmax", "percentile", "plate"])
def test_compiled_pass_equals_numpy_operations(mode):
    """uint16 crops (one compiled pass) give the float32 crops' numpy results, bit for bit."""
    rng = np.random.default_rng(3)
    crops = rng.integers(0, 60000, (5, 3, 13, 13)).astype(np.uint16)
    crops[0, 0] = 0
    crops[1, 1] = 7
    crops[2, 2, :6] = 0  # masked: many zeros
    plate = (np.array([0.0, 7.0, np.nan]), np.array([30000.0, 7.0, 5.0]))
    compiled = normalise_crops(crops, mode, plate_range=plate)
    reference = normalise_crops(crops.astype(np.float32), mode, plate_range=plate)
    np.testing.assert_array_equal(compiled, reference)
    assert np.array_equal(compiled.view(np.uint32), reference.view(np.uint32))
    if mode == "percentile":
        low, high = (np.percentile(crops[3, 0], q) for q in (1.0, 99.0))
        by_hand = (crops[3, 0].astype(np.float32) - np.float32(low)) / np.float32(high - low)
        np.testing.assert_array_equal(compiled[3, 0], np.clip(by_hand, 0, 1))
    if mode == "minmax":  # each crop's channel minimum to 0, its maximum to 1
        low, high = crops[3, 0].min(), crops[3, 0].max()
        by_hand = (crops[3, 0].astype(np.float32) - np.float32(low)) / np.float32(high - low)
        np.testing.assert_array_equal(compiled[3, 0], by_hand)
        assert compiled[3].min() == 0 and compiled[3].max() == 1
        assert (compiled[1, 1] == 0).all()  # a flat channel reads 0


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_take_writes_crops_in_any_order_with_repeats(dtype):
    rng = np.random.default_rng(4)
    crops = rng.integers(0, 5000, (4, 2, 6, 6)).astype(dtype)
    whole = normalise_crops(crops, "percentile")
    take = np.array([3, 0, 3, 1])
    np.testing.assert_array_equal(normalise_crops(crops, "percentile", take=take), whole[take])
    out = np.full((5, 2, 6, 6), -7.0, np.float32)
    normalise_crops(crops, "percentile", take=np.array([-1, 2, -1, 0, 2]), out=out)
    assert (out[[0, 2]] == -7).all()
    np.testing.assert_array_equal(out[[1, 3, 4]], whole[[2, 0, 2]])
    with pytest.raises(ValueError, match="take must be"):
        normalise_crops(crops, "none", take=np.array([4]))


def test_percentile_mode_maps_the_percentiles_and_handles_flat_channels():
    crops = np.zeros((2, 2, 8, 8), np.uint16)
    crops[0, 0] = np.arange(64).reshape(8, 8)
    crops[1, 1] = 9  # constant: high == low, nothing above high
    image = normalise_crops(crops, "percentile", percentiles=(0.0, 100.0))
    np.testing.assert_allclose(image[0, 0], np.arange(64).reshape(8, 8) / 63, atol=1e-7)
    assert (image[0, 1] == 0).all() and (image[1, 1] == 0).all()


def test_per_crop_plate_ranges():
    crops = np.full((2, 1, 2, 2), 100, np.uint16)
    low, high = np.array([[0.0], [50.0]]), np.array([[200.0], [150.0]])
    image = normalise_crops(crops, "plate", plate_range=(low, high))
    np.testing.assert_allclose(image[:, 0, 0, 0], [0.5, 0.5])
    low, high = np.array([[0.0], [100.0]]), np.array([[400.0], [300.0]])
    image = normalise_crops(crops, "plate", plate_range=(low, high))
    np.testing.assert_allclose(image[:, 0, 0, 0], [0.25, 0.0])


def test_bad_mode_and_out():
    crops = np.zeros((1, 1, 4, 4), np.uint16)
    with pytest.raises(ValueError, match="normalise must be one of"):
        normalise_crops(crops, "zscore")
    with pytest.raises(ValueError, match="plate_range"):
        normalise_crops(crops, "plate")
    with pytest.raises(ValueError, match="out must be a C-contiguous float32"):
        normalise_crops(crops, "none", out=np.zeros((1, 1, 4, 4), np.float64))


@pytest.fixture(scope="module")
def real_crops():
    """24 real BBBC021 crops (.npy, S x S x C uint16) as (N, C, S, S), or skip without them."""
    root = Path(os.environ.get("CELLBENCH_DATA", "/work/shared/data")) / "bbbc021" / "crops"
    files = sorted(root.glob("*.npy"))[:: max(1, len(list(root.glob("*.npy"))) // 24)][:24]
    if not files:
        pytest.skip(f"no real crops under {root} (set CELLBENCH_DATA)")
    crops = [np.moveaxis(np.load(path), -1, 0) for path in files]
    assert all(c.dtype == np.uint16 for c in crops)
    shape = crops[0].shape
    return np.stack([c for c in crops if c.shape == shape])
