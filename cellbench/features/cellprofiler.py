"""CellProfiler's full per-object feature set, measured with ``cp_measure`` (optional backend).

``features.backend: cellprofiler`` measures every region of ``features.regions`` with every
core measurement of ``cp_measure.bulk.get_core_measurements`` (MeasureObjectIntensity,
MeasureObjectSizeShape with Zernike and Feret, MeasureTexture, MeasureGranularity,
MeasureObjectIntensityDistribution with its Zernikes) for every channel, and with every
correlation measurement (MeasureColocalization: Pearson, Manders, RWC, Costes) for every
channel pair. Columns carry CellProfiler's names, ``<Region>_<Measurement>``, e.g.
``Nuclei_Intensity_MeanIntensity_DNA``, ``Cells_AreaShape_Zernike_3_1``,
``Cells_Granularity_1_DNA``, ``Cells_Texture_Contrast_DNA_3_00_256``,
``Cells_RadialDistribution_FracAtD_DNA_1of4`` or ``Cells_Correlation_Correlation_DNA_actin``
(CellProfiler's word for Pearson's r; Manders, RWC, K and Costes name the channel they are
measured for first).

Intensity, size and shape are measured on the raw intensities, as the native backend does, so
that the columns both backends share can be compared. Texture, granularity, radial distribution
and correlation are measured, as CellProfiler does, on intensities scaled to [0, 1] by the
image's bit depth (`unit_scale`: 1, 255, 4095 or 65535, the smallest that holds the field's
maximum), one fixed scale for every field of that depth.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cellbench.features.compartment import _compact, labels_of, region_labels
from cellbench.features.measure import COUNT_COLUMN, _checked

if TYPE_CHECKING:
    from cellbench.config import FeaturesConfig

__all__ = ["PIP_EXTRA", "measure_field_cellprofiler", "require_cp_measure", "unit_scale"]

PIP_EXTRA = "pip install cellbench[cellprofiler]"
_RAW = ("intensity", "sizeshape", "zernike", "feret")  # measured on raw intensities
_NO_CHANNEL = ("sizeshape", "zernike", "feret")  # shape: once per region, not per channel
_BIT_DEPTHS = (1.0, 255.0, 4095.0, 65535.0)
_PEARSON = ("Correlation_Pearson", "Correlation_Correlation")  # cp_measure's, CellProfiler's


def require_cp_measure() -> None:
    """Raise ImportError naming the pip extra when ``cp_measure`` is not installed."""
    try:
        import cp_measure.bulk  # noqa: F401
    except ImportError as error:
        raise ImportError(
            f"features.backend: cellprofiler needs cp_measure, which is not installed: {PIP_EXTRA}"
        ) from error


def unit_scale(image: np.ndarray) -> float:
    """The bit depth's full scale that holds the image's maximum (CellProfiler's [0, 1] scale).

    Examples
    --------
    >>> unit_scale(np.array([0.0, 200.0]))
    255.0
    """
    top = float(np.nanmax(image)) if image.size else 0.0
    for depth in _BIT_DEPTHS:
        if top <= depth:
            return depth
    return top


def measure_field_cellprofiler(
    image: np.ndarray,
    cells: np.ndarray,
    nuclei: np.ndarray,
    channel_names: list[str],
    features: FeaturesConfig,
) -> pd.DataFrame:
    """Measure every cell of one field with CellProfiler's measurements (``cp_measure``).

    Parameters
    ----------
    image : (C, Y, X) ndarray
        Raw intensities.
    cells, nuclei : (Y, X) ndarray of int
        Label images; a nucleus carries its cell's label.
    channel_names : list of str
        Names of the C channels, used in column names.
    features : FeaturesConfig
        Its ``regions`` are measured (``texture`` settings are cellbench's own and unused:
        CellProfiler's texture is measured at 3 px, 256 grey levels, four angles).

    Returns
    -------
    DataFrame
        One row per cell label (``label``, ascending, as `measure_field`), ``Image_Count_Cells``,
        then per region (in `REGIONS` order) CellProfiler's columns; NaN for a cell whose region
        has no pixels.

    Raises
    ------
    ImportError
        cp_measure is not installed (the message names the pip extra).
    ValueError
        As `measure_field`: the image does not match the channel names or the label images.
    """
    require_cp_measure()
    from cp_measure.bulk import get_core_measurements, get_correlation_measurements

    image, cells, nuclei = _checked(image, cells, nuclei, channel_names)
    raw = image.astype(np.float64, copy=False)
    scaled = raw / unit_scale(raw)
    labels = labels_of(cells)
    columns: dict[str, np.ndarray] = {
        "label": labels,
        COUNT_COLUMN: np.full(len(labels), len(labels), dtype=np.int64),
    }
    core = get_core_measurements(sanitize=False)
    correlation = get_correlation_measurements(sanitize=False)
    for region, label_image in region_labels(cells, nuclei).items():
        if region not in features.regions:
            continue
        present = labels_of(label_image)
        if len(present) == 0:
            continue
        masks = _compact(label_image, present).astype(np.int32, copy=False)
        rows = np.searchsorted(labels, present)
        measured = _region_columns(masks, raw, scaled, channel_names, core, correlation)
        for name, values in measured.items():
            column = np.full(len(labels), np.nan)
            column[rows] = _values(values, len(present), f"{region}_{name}")
            columns[f"{region}_{name}"] = column
    return pd.DataFrame(columns)


def _region_columns(
    masks: np.ndarray,
    raw: np.ndarray,
    scaled: np.ndarray,
    channel_names: list[str],
    core: dict[str, Callable],
    correlation: dict[str, Callable],
) -> dict[str, object]:
    """Every measurement of one region (objects 1..N in `masks`), by CellProfiler's name."""
    out: dict[str, object] = {}
    for name, function in core.items():
        pixels = raw if name in _RAW else scaled
        if name in _NO_CHANNEL:
            out.update({f"AreaShape_{k}": v for k, v in function(masks, pixels[0]).items()})
            continue
        for plane, channel in zip(pixels, channel_names, strict=True):
            for key, values in function(masks, plane).items():
                out[_with_channel(name, key, channel)] = values
    for (i, first), (j, second) in combinations(enumerate(channel_names), 2):
        for name, function in correlation.items():
            extra = {"scale_max": 65535} if name == "costes" else {}
            result = function(scaled[i], scaled[j], masks, **extra)
            for key, values in result.items():
                out[_pair_name(key, first, second)] = values
    return out


def _with_channel(measurement: str, key: str, channel: str) -> str:
    """CellProfiler's name of a per-channel cp_measure key: ``Texture_Contrast_DNA_3_00_256``."""
    if measurement == "texture":
        feature, _, parameters = key.partition("_")
        return f"Texture_{feature}_{channel}_{parameters}"
    if measurement in ("radial_distribution", "radial_zernikes"):
        group, feature, parameters = key.split("_", 2)
        return f"{group}_{feature}_{channel}_{parameters}"
    return f"{key}_{channel}"  # Intensity_*, Location_*, Granularity_<scale>


def _pair_name(key: str, first: str, second: str) -> str:
    """CellProfiler's name of a correlation key: ``_1``/``_2`` say which channel comes first."""
    if key == _PEARSON[0]:
        key = _PEARSON[1]
    if key.endswith("_2"):
        return f"{key[:-2]}_{second}_{first}"
    if key.endswith("_1"):
        return f"{key[:-2]}_{first}_{second}"
    return f"{key}_{first}_{second}"


def _values(values: object, n: int, column: str) -> np.ndarray:
    """One float per object; ValueError naming the column when cp_measure gave another count."""
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size != n:
        raise ValueError(f"cp_measure gave {array.size} values for {n} objects in {column}")
    return array
