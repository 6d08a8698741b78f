import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.feature import graycoprops

from cellbench.data.plates import read_field
from cellbench.features import texture
from cellbench.features.measure import region_labels
from cellbench.features.texture import (
    PROPERTIES,
    angle_token,
    glcm_offset,
    glcm_properties,
    glcm_texture,
)
from cellbench.paths import ResultsPaths
from cellbench.segment.store import read_labels

CHANNELS = ["DNA", "tubulin", "actin"]
SKIMAGE_NAMES = {
    "Contrast": "contrast",
    "Dissimilarity": "dissimilarity",
    "Homogeneity": "homogeneity",
    "Energy": "energy",
    "Correlation": "correlation",
    "ASM": "ASM",
}


def reference_glcm(labels, plane, label, offset, levels):
    """Slow reference: a Python loop over the pixel pairs of one object's bounding box."""
    box = ndi.find_objects((labels == label).astype(np.int32))[0]
    mask = labels[box] == label
    values = plane[box].astype(np.float64)
    top = values[mask].max()
    grey = np.floor(values / top * (levels - 1)).astype(int) if top > 0 else 0 * mask
    counts = np.zeros((levels, levels), np.int64)
    dr, dc = offset
    rows, cols = mask.shape
    for r in range(rows):
        for c in range(cols):
            r2, c2 = r + dr, c + dc
            if 0 <= r2 < rows and 0 <= c2 < cols and mask[r, c] and mask[r2, c2]:
                counts[grey[r, c], grey[r2, c2]] += 1
    return counts + counts.T


def skimage_props(counts):
    matrix = counts[:, :, None, None]
    return {name: graycoprops(matrix, prop)[0, 0] for name, prop in SKIMAGE_NAMES.items()}


@pytest.fixture(scope="module")
def field(segmented_plate):
    config, plate = segmented_plate
    first = plate.fields[0]
    image = read_field(plate, first, CHANNELS)
    cells, nuclei = read_labels(ResultsPaths(config.results_root).label_store("P1"), first.name)
    return image, cells, nuclei


@pytest.mark.parametrize("region", ["Nuclei", "Cytoplasm", "Cells"])
def test_vectorised_glcm_equals_a_per_object_reference(field, region):
    image, cells, nuclei = field
    labels = region_labels(cells, nuclei)[region]
    distances, angles, levels = [1, 2], [0, 45, 90, 135], 16
    values = glcm_texture(labels, image, distances, angles, levels)
    for label in np.unique(labels[labels > 0])[:3]:
        for c in range(len(CHANNELS)):
            for distance in distances:
                for angle in angles:
                    offset = glcm_offset(distance, angle)
                    counts = reference_glcm(labels, image[c], label, offset, levels)
                    expected = skimage_props(counts)
                    for name in PROPERTIES:
                        got = values[(name, c, distance, angle)][label - 1]
                        assert got == pytest.approx(expected[name], rel=1e-9, abs=1e-12), (
                            label,
                            c,
                            distance,
                            angle,
                            name,
                        )


def test_full_matrix_properties_equal_graycoprops(field):
    image, cells, _ = field
    label = int(np.unique(cells[cells > 0])[0])
    counts = reference_glcm(cells, image[1], label, (0, 1), 32)
    props = glcm_properties(counts[None])
    expected = skimage_props(counts)
    for name in PROPERTIES:
        assert props[name][0] == pytest.approx(expected[name], rel=1e-12)


def test_offsets_and_angle_names_follow_scikit_image():
    assert glcm_offset(1, 0) == (0, 1)
    assert glcm_offset(1, 45) == (1, 1)
    assert glcm_offset(1, 90) == (1, 0)
    assert glcm_offset(1, 135) == (1, -1)
    assert glcm_offset(3, 45) == (2, 2)  # 2.12 rounds to 2
    assert [angle_token(a) for a in (0, 45, 90.0, 135, 22.5)] == ["00", "45", "90", "135", "22p5"]


def small_scene():
    labels = np.zeros((12, 20), np.int32)
    labels[1:7, 1:7] = 1  # checkerboard
    labels[1:7, 8:12] = 2  # constant, touching object 3
    labels[1:7, 12:16] = 3  # constant, another value
    labels[9, 9] = 4  # a single pixel: no pair
    labels[8:11, 15:19] = 5  # constant 0
    image = np.zeros((1, 12, 20), np.uint16)
    rr, cc = np.mgrid[:12, :20]
    image[0][labels == 1] = (100 * ((rr + cc) % 2))[labels == 1]
    image[0][labels == 2] = 7
    image[0][labels == 3] = 900
    image[0][labels == 4] = 3
    return labels, image


def test_checkerboard_constant_and_tiny_objects():
    labels, image = small_scene()
    values = glcm_texture(labels, image, [1], [0, 90], 8)
    get = {name: values[(name, 0, 1, 0)] for name in PROPERTIES}
    assert get["Contrast"][0] == pytest.approx(49)  # every horizontal pair is (0, 7)
    assert get["Correlation"][0] == pytest.approx(-1)
    for k in (1, 2, 4):  # constant objects, touching or not, and all-zero: one grey level
        assert get["Contrast"][k] == 0
        assert get["Energy"][k] == 1
        assert get["ASM"][k] == 1
        assert np.isnan(get["Correlation"][k])
    for name in PROPERTIES:  # single pixel: no pair
        assert np.isnan(get[name][3])


def test_texture_of_float_images_with_odd_values_raises_no_warning():
    labels, image = small_scene()
    floats = image.astype(np.float32) - 50
    floats[0, 1, 1] = np.nan
    values = glcm_texture(labels, floats, [1], [0], 8)  # warnings are errors here
    assert values[("Contrast", 0, 1, 0)].shape == (5,)


def test_chunked_counting_gives_the_same_values(field, monkeypatch):
    image, cells, _ = field
    whole = glcm_texture(cells, image, [1, 2], [0, 45], 32)
    monkeypatch.setattr(texture, "MAX_BINS", 3 * 528 * 7)  # 7 objects (3 channels, 32 levels)
    chunked = glcm_texture(cells, image, [1, 2], [0, 45], 32)
    for key, values in whole.items():
        np.testing.assert_allclose(values, chunked[key], rtol=1e-14, atol=0)


def test_objects_on_the_image_edges_pair_only_inside_the_image():
    labels = np.zeros((6, 5), np.int32)
    labels[1:4, :] = 1  # full rows: the end of one row must not pair with the next row's start
    labels[4:, 3:] = 2  # in the bottom-right corner
    labels[0, 4] = 3  # top-right corner, a single pixel
    image = np.arange(1, 31, dtype=np.uint16).reshape(1, 6, 5)
    angles = [0, 45, 90, 135, 180]
    values = glcm_texture(labels, image, [1, 2], angles, 8)
    for label in (1, 2, 3):
        for distance in (1, 2):
            for angle in angles:
                counts = reference_glcm(labels, image[0], label, glcm_offset(distance, angle), 8)
                if counts.sum() == 0:
                    assert np.isnan(values[("Contrast", 0, distance, angle)][label - 1])
                    continue
                expected = skimage_props(counts)
                for name in PROPERTIES:
                    got = values[(name, 0, distance, angle)][label - 1]
                    assert got == pytest.approx(expected[name], rel=1e-12, nan_ok=True)
