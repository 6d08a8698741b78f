"""Score a segmentation method on a folder of images with ground-truth instance masks.

Images and masks are TIFF files in two folders, paired by file name (e.g. the DSB 2018 nuclei
of `$CELLBENCH_DATA/dsb2018/{images,masks}`). The method is any callable from a (Y, X) image
to (Y, X) labels.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tifffile
from tqdm import tqdm

from cellbench.segment.metrics import score_image, summarise

TIFF_SUFFIXES = (".tif", ".tiff")


def _tiffs(folder: Path) -> dict[str, Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if (
            path.is_file()
            and path.suffix.lower() in TIFF_SUFFIXES
            and not path.name.startswith(".")
        ):
            if path.stem in files:
                raise ValueError(
                    f"{folder} holds two files named {path.stem}: "
                    f"{files[path.stem].name} and {path.name}"
                )
            files[path.stem] = path
    return files


def pair_files(images: Path, masks: Path) -> list[tuple[Path, Path]]:
    """Pair image and mask TIFFs by file name (stem), never by position.

    Parameters
    ----------
    images, masks : Path
        Folders of ``*.tif`` / ``*.tiff`` files.

    Returns
    -------
    list of (Path, Path)
        (image, mask) pairs sorted by name.

    Raises
    ------
    ValueError
        If an image has no mask or a mask has no image (all of them are named), or a folder
        holds no TIFF at all.
    """
    image_files, mask_files = _tiffs(images), _tiffs(masks)
    no_mask = sorted(image_files.keys() - mask_files.keys())
    no_image = sorted(mask_files.keys() - image_files.keys())
    problems = []
    if no_mask:
        names = ", ".join(image_files[s].name for s in no_mask)
        problems.append(f"{len(no_mask)} image(s) in {images} without a mask: {names}")
    if no_image:
        names = ", ".join(mask_files[s].name for s in no_image)
        problems.append(f"{len(no_image)} mask(s) in {masks} without an image: {names}")
    if problems:
        raise ValueError("; ".join(problems))
    if not image_files:
        raise ValueError(f"no TIFF images in {images}")
    return [(image_files[stem], mask_files[stem]) for stem in sorted(image_files)]


def read_image(path: Path) -> np.ndarray:
    """Read one image as (Y, X): an RGB / RGBA (Y, X, 3|4) image becomes its max over R, G, B.

    The alpha channel of RGBA is not a colour and is left out of the max.
    """
    image = tifffile.imread(path)
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        image = image[..., :3].max(axis=-1)
    if image.ndim != 2:
        raise ValueError(f"{path.name}: expected a (Y, X) or (Y, X, 3|4) image, got {image.shape}")
    return image


def read_mask(path: Path) -> np.ndarray:
    """Read one (Y, X) instance label mask."""
    mask = tifffile.imread(path)
    if mask.ndim != 2:
        raise ValueError(f"{path.name}: expected a (Y, X) label mask, got {mask.shape}")
    return mask


def evaluate_folder(
    images: Path,
    masks: Path,
    predict: Callable[[np.ndarray], np.ndarray],
    progress: bool = True,
) -> dict:
    """Run `predict` on every image of a folder and score it against the paired mask.

    Parameters
    ----------
    images, masks : Path
        Folders of image and label-mask TIFFs paired by name (see `pair_files`).
    predict : callable
        Maps a (Y, X) image to (Y, X) integer labels (0 background).
    progress : bool
        Show a tqdm progress bar on stderr.

    Returns
    -------
    dict
        ``images``: one dict per image, ``{"name": stem, **score_image(...), "seconds": s}``
        where ``seconds`` is the time spent in `predict`; ``overall``: `summarise` of them.
    """
    pairs = pair_files(Path(images), Path(masks))
    rows = []
    for image_path, mask_path in tqdm(
        pairs, desc="segment", unit="image", file=sys.stderr, disable=not progress
    ):
        image = read_image(image_path)
        started = time.perf_counter()
        labels = np.asarray(predict(image))
        seconds = time.perf_counter() - started
        truth = read_mask(mask_path)
        if labels.shape != truth.shape:
            raise ValueError(
                f"{image_path.name}: prediction {labels.shape} differs from mask {truth.shape}"
            )
        rows.append({"name": image_path.stem, **score_image(truth, labels), "seconds": seconds})
    return {"images": rows, "overall": summarise(rows)}


def format_report(result: dict) -> str:
    """Format `evaluate_folder`'s result as a plain-text table.

    One line per image (name, n_true, n_predicted, precision, recall, F1 at IoU 0.5,
    AP 0.5:0.95, seconds in `predict`), then two overall lines: the mean over images (seconds:
    the mean per image) and the pooled counts (precision / recall / F1 from the summed TP, FP,
    FN).
    """
    rows = result["images"]
    overall = result["overall"]
    width = max([len("overall (pooled)")] + [len(str(r["name"])) for r in rows])
    header = (
        f"{'image':<{width}}  {'n_true':>7}  {'n_pred':>7}  {'precision':>9}  {'recall':>7}"
        f"  {'F1@0.5':>7}  {'AP50:95':>7}  {'seconds':>8}"
    )

    def line(name, n_true, n_pred, precision, recall, f1, ap, seconds) -> str:
        ap_text = f"{ap:7.3f}" if ap is not None else f"{'-':>7}"
        seconds_text = f"{seconds:8.3f}" if seconds is not None else f"{'-':>8}"
        return (
            f"{name:<{width}}  {n_true:>7}  {n_pred:>7}  {precision:9.3f}  {recall:7.3f}"
            f"  {f1:7.3f}  {ap_text}  {seconds_text}"
        )

    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            line(
                r["name"],
                r["n_true"],
                r["n_predicted"],
                r["precision"],
                r["recall"],
                r["f1"],
                r["ap_50_95"],
                r.get("seconds"),
            )
        )
    lines.append("-" * len(header))
    mean_seconds = overall["seconds"] / overall["n_images"] if "seconds" in overall else None
    lines.append(
        line(
            "overall (mean)",
            overall["n_true"],
            overall["n_predicted"],
            overall["mean_precision"],
            overall["mean_recall"],
            overall["mean_f1"],
            overall["mean_ap_50_95"],
            mean_seconds,
        )
    )
    lines.append(
        line(
            "overall (pooled)",
            overall["n_true"],
            overall["n_predicted"],
            overall["pooled_precision"],
            overall["pooled_recall"],
            overall["pooled_f1"],
            None,
            None,
        )
    )
    return "\n".join(lines)
