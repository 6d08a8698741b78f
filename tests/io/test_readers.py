"""Readers for real microscopy files: ND2, single- and multi-channel TIFF, channel mapping."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import nd2
import numpy as np
import pytest
import tifffile

from cellbench.errors import CellbenchError
from cellbench.io import nd2 as nd2_reader
from cellbench.io.nd2 import read_nd2
from cellbench.io.tiff import FieldImage, map_channels, read_channel_files, read_tiff

DATA = Path(
    os.environ.get("CELLBENCH_DATA")
    or Path(__file__).resolve().parents[2].parent / "shared" / "data"
)
if not DATA.is_dir():
    pytest.skip(
        f"real microscopy data not found at {DATA} (set CELLBENCH_DATA)", allow_module_level=True
    )

CLUSTER = DATA / "nd2" / "cluster.nd2"
HUMAN = [
    DATA / "cellprofiler_examples/ExampleHuman/images" / f"AS_09125_050116030001_D03f00d{i}.tif"
    for i in range(3)
]
FLY = DATA / "cellprofiler_examples/ExampleFly/images"
CLUSTER_NAMES = ["5-FAM/pH 9.0", "FM 4-64/2% CHAPS"]


@pytest.fixture(scope="module")
def cluster_raw():
    with nd2.ND2File(CLUSTER) as handle:
        assert dict(handle.sizes) == {"T": 3, "Z": 10, "C": 2, "Y": 31, "X": 38}
        return handle.asarray()


# ------------------------------------------------------------------------------------- ND2


def test_nd2_max_projection_matches_raw(cluster_raw):
    fields = read_nd2(CLUSTER)
    assert len(fields) == 1
    field = fields[0]
    assert field.image.shape == (2, 31, 38)
    assert field.image.dtype == np.uint16
    np.testing.assert_array_equal(field.image, cluster_raw[0].max(axis=0))
    assert field.channel_names == CLUSTER_NAMES
    assert field.pixel_size_um == pytest.approx(0.168, abs=5e-4)
    assert field.source == str(CLUSTER)


def test_nd2_z_plane_and_time(cluster_raw):
    plane = read_nd2(CLUSTER, z=3)[0].image
    np.testing.assert_array_equal(plane, cluster_raw[0, 3])
    late = read_nd2(CLUSTER, t=2)[0].image
    np.testing.assert_array_equal(late, cluster_raw[2].max(axis=0))
    assert not np.array_equal(late, read_nd2(CLUSTER, t=0)[0].image)
    np.testing.assert_array_equal(read_nd2(CLUSTER, z=9, t=1)[0].image, cluster_raw[1, 9])


def test_nd2_out_of_range():
    with pytest.raises(CellbenchError, match="T size is 3") as info:
        read_nd2(CLUSTER, t=5)
    assert "cluster.nd2" in str(info.value) and "t=5" in str(info.value)
    with pytest.raises(CellbenchError, match="Z size is 10"):
        read_nd2(CLUSTER, z=10)
    with pytest.raises(CellbenchError, match="'max' or a non-negative integer"):
        read_nd2(CLUSTER, z="mean")


def test_nd2_truncated(tmp_path):
    bad = tmp_path / "cluster_truncated.nd2"
    data = CLUSTER.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CellbenchError, match="cluster_truncated.nd2"):
        read_nd2(bad)
    with pytest.raises(CellbenchError, match="not found"):
        read_nd2(tmp_path / "missing.nd2")


class _FakeND2File:
    """Stands in for nd2.ND2File: the nd2 package cannot write multi-position files."""

    def __init__(self, data: np.ndarray, sizes: dict[str, int], names: list[str]):
        self.data, self.sizes, self.closed = data, sizes, False
        channels = [SimpleNamespace(channel=SimpleNamespace(name=n)) for n in names]
        for channel in channels:
            channel.volume = SimpleNamespace(axesCalibrated=(True, True, True))
        self.metadata = SimpleNamespace(channels=channels)

    def voxel_size(self):
        return SimpleNamespace(x=0.5, y=0.5, z=2.0)

    def to_dask(self):
        import dask.array as da

        return da.from_array(self.data, chunks=(1,) * (self.data.ndim - 2) + self.data.shape[-2:])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.closed = True


def _fake_open(monkeypatch, data, sizes, names):
    opened = []

    def factory(path):
        opened.append(_FakeND2File(data, sizes, names))
        return opened[-1]

    monkeypatch.setattr(nd2_reader.nd2, "ND2File", factory)
    return opened


def test_nd2_positions_split_in_order(monkeypatch):
    # Unit test of the position splitting with a fake reader (no multi-position ND2 at hand).
    rng = np.random.default_rng(1)
    sizes = {"P": 3, "T": 2, "Z": 4, "C": 2, "Y": 5, "X": 6}
    data = rng.integers(0, 4096, tuple(sizes.values()), dtype=np.uint16)
    opened = _fake_open(monkeypatch, data, sizes, ["DAPI", "GFP"])
    fields = read_nd2(Path("plate.nd2"), t=1)
    assert [f.image.shape for f in fields] == [(2, 5, 6)] * 3
    for p, field in enumerate(fields):
        np.testing.assert_array_equal(field.image, data[p, 1].max(axis=0))
        assert field.channel_names == ["DAPI", "GFP"] and field.pixel_size_um == 0.5
        assert field.source == f"plate.nd2 position {p}/3"
    np.testing.assert_array_equal(read_nd2(Path("plate.nd2"), z=2)[2].image, data[2, 0, 2])
    assert all(handle.closed for handle in opened)
    with pytest.raises(CellbenchError, match="T size is 2"):
        read_nd2(Path("plate.nd2"), t=2)


def test_nd2_rgb_components_become_channels(monkeypatch):
    rng = np.random.default_rng(2)
    sizes = {"Y": 5, "X": 6, "S": 3}
    data = rng.integers(0, 255, (5, 6, 3), dtype=np.uint8)
    _fake_open(monkeypatch, data, sizes, ["Brightfield"])
    (field,) = read_nd2(Path("rgb.nd2"))
    np.testing.assert_array_equal(field.image, np.moveaxis(data, -1, 0))
    assert field.channel_names == ["Brightfield [R]", "Brightfield [G]", "Brightfield [B]"]


# ------------------------------------------------------------------------ channel files


def test_example_human_channel_files():
    field = read_channel_files(HUMAN, ["DNA", "PH3", "cells"])
    assert field.image.shape == (3, 512, 512)
    assert field.channel_names == ["DNA", "PH3", "cells"]
    for i, path in enumerate(HUMAN):
        np.testing.assert_array_equal(field.image[i], tifffile.imread(path))
    assert field.image.dtype == tifffile.imread(HUMAN[0]).dtype
    assert all(path.name in field.source for path in HUMAN)
    assert field.pixel_size_um is None  # the files record an inch (DPI) resolution only


def test_example_fly_channel_files():
    paths = [FLY / f"01_POS076_{c}.TIF" for c in "DFR"]
    field = read_channel_files(paths, ["DNA", "F", "R"])
    assert field.image.shape == (3, 1006, 1000) and field.image.dtype == np.uint8
    for i, path in enumerate(paths):
        np.testing.assert_array_equal(field.image[i], tifffile.imread(path))


def test_channel_files_reject_stacks_and_mismatches(tmp_path):
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, np.zeros((3, 512, 512), np.uint8), photometric="minisblack")
    with pytest.raises(CellbenchError, match="expected one channel") as info:
        read_channel_files([HUMAN[0], stack], ["DNA", "stack"])
    assert "stack.tif" in str(info.value) and "(3, 512, 512)" in str(info.value)

    small = tmp_path / "small.tif"
    tifffile.imwrite(small, np.zeros((100, 120), np.uint8))
    with pytest.raises(CellbenchError) as info:
        read_channel_files([HUMAN[0], HUMAN[1], small], ["a", "b", "c"])
    message = str(info.value)
    assert "small.tif" in message and "(100, 120)" in message and "(512, 512)" in message

    with pytest.raises(CellbenchError, match="channel name"):
        read_channel_files(HUMAN, ["DNA", "PH3"])


# ------------------------------------------------------------------------------- TIFF


def test_read_tiff_single_plane():
    field = read_tiff(HUMAN[2])
    assert field.image.shape == (1, 512, 512)
    np.testing.assert_array_equal(field.image[0], tifffile.imread(HUMAN[2]))
    assert field.channel_names is None


def test_read_tiff_cellbench_file(tmp_path):
    path = tmp_path / "field.tif"
    image = np.arange(3 * 8 * 9, dtype=np.uint16).reshape(3, 8, 9)
    tifffile.imwrite(
        path,
        image,
        photometric="minisblack",
        metadata={"axes": "CYX", "channel_names": ["DNA", "ER", "Mito"]},
    )
    field = read_tiff(path)
    np.testing.assert_array_equal(field.image, image)
    assert field.channel_names == ["DNA", "ER", "Mito"]
    assert field.source == str(path)


def test_read_tiff_ome(tmp_path):
    path = tmp_path / "stack.ome.tif"
    rng = np.random.default_rng(3)
    data = rng.integers(0, 60000, (2, 3, 2, 16, 20), dtype=np.uint16)  # T Z C Y X
    tifffile.imwrite(
        path,
        data,
        ome=True,
        photometric="minisblack",
        metadata={
            "axes": "TZCYX",
            "Channel": {"Name": ["Hoechst", "Phalloidin"]},
            "PhysicalSizeX": 0.325,
            "PhysicalSizeY": 0.325,
        },
    )
    field = read_tiff(path)
    np.testing.assert_array_equal(field.image, data[0].max(axis=0))
    assert field.channel_names == ["Hoechst", "Phalloidin"]
    assert field.pixel_size_um == pytest.approx(0.325)
    np.testing.assert_array_equal(read_tiff(path, t=1, z=2).image, data[1, 2])
    np.testing.assert_array_equal(read_tiff(path, t=1).image, data[1].max(axis=0))
    with pytest.raises(CellbenchError, match="T size is 2"):
        read_tiff(path, t=2)
    with pytest.raises(CellbenchError, match="Z size is 3"):
        read_tiff(path, z=3)


def test_read_tiff_imagej_hyperstack(tmp_path):
    path = tmp_path / "hyper.tif"
    rng = np.random.default_rng(4)
    data = rng.integers(0, 255, (4, 2, 10, 12), dtype=np.uint8)  # Z C Y X
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        resolution=(1 / 0.2, 1 / 0.2),
        metadata={"axes": "ZCYX", "unit": "um", "Labels": ["dna", "actin"] * 4},
    )
    field = read_tiff(path)
    np.testing.assert_array_equal(field.image, data.max(axis=0))
    assert field.channel_names == ["dna", "actin"]
    assert field.pixel_size_um == pytest.approx(0.2)
    np.testing.assert_array_equal(read_tiff(path, z=1).image, data[1])


def test_read_tiff_rgb(tmp_path):
    path = tmp_path / "rgb.tif"
    rgb = np.random.default_rng(5).integers(0, 255, (10, 12, 3), dtype=np.uint8)
    tifffile.imwrite(
        path, rgb, photometric="rgb", resolution=(2e4, 2e4), resolutionunit="CENTIMETER"
    )
    field = read_tiff(path)
    np.testing.assert_array_equal(field.image, np.moveaxis(rgb, -1, 0))
    assert field.pixel_size_um == pytest.approx(0.5)


def test_read_tiff_truncated_and_corrupt(tmp_path):
    for source in (HUMAN[0], FLY / "01_POS002_D.TIF"):
        bad = tmp_path / f"truncated_{source.name}"
        bad.write_bytes(source.read_bytes()[:1000])
        with pytest.raises(CellbenchError, match=bad.name):
            read_tiff(bad)
        with pytest.raises(CellbenchError, match=bad.name):
            read_channel_files([source, bad], ["a", "b"])
    # Image data cut short at the end (the IFD is intact).
    compressed = tmp_path / "compressed.tif"
    tifffile.imwrite(compressed, np.random.default_rng(6).integers(0, 255, (64, 64), np.uint8))
    cut = tmp_path / "cut.tif"
    data = compressed.read_bytes()
    cut.write_bytes(data[:-200])
    with pytest.raises(CellbenchError, match="cut.tif"):
        read_tiff(cut)
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"not a tiff at all" * 10)
    with pytest.raises(CellbenchError, match="garbage.tif"):
        read_tiff(garbage)
    with pytest.raises(CellbenchError, match="not found"):
        read_tiff(tmp_path / "missing.tif")


# ------------------------------------------------------------------------ map_channels


@pytest.fixture
def cluster_field():
    return read_nd2(CLUSTER)[0]


def test_map_channels_by_name_index_and_mapping(cluster_field):
    image = cluster_field.image
    np.testing.assert_array_equal(
        map_channels(cluster_field, ["FM 4-64/2% CHAPS", "5-FAM/pH 9.0"]), image[[1, 0]]
    )
    np.testing.assert_array_equal(
        map_channels(cluster_field, ["membrane"], {"membrane": 1}), image[[1]]
    )
    picked = map_channels(
        cluster_field, ["dye", "membrane"], {"dye": "5-FAM/pH 9.0", "membrane": "FM 4-64/2% CHAPS"}
    )
    assert picked.shape == (2, 31, 38)
    np.testing.assert_array_equal(picked, image)


def test_map_channels_missing_lists_available(cluster_field):
    with pytest.raises(CellbenchError) as info:
        map_channels(cluster_field, ["5-FAM/pH 9.0", "DNA"])
    message = str(info.value)
    assert "'DNA'" in message and "5-FAM/pH 9.0" in message and "FM 4-64/2% CHAPS" in message
    assert "cluster.nd2" in message
    with pytest.raises(CellbenchError, match="'Hoechst'"):
        map_channels(cluster_field, ["DNA"], {"DNA": "Hoechst"})
    with pytest.raises(CellbenchError, match="out of range"):
        map_channels(cluster_field, ["DNA"], {"DNA": 2})


def test_map_channels_unnamed_file_needs_an_index():
    field = FieldImage(np.zeros((2, 4, 4), np.uint8), None, None, "x.tif")
    with pytest.raises(CellbenchError, match="unnamed"):
        map_channels(field, ["DNA"])
    assert map_channels(field, ["DNA"], {"DNA": 1}).shape == (1, 4, 4)
