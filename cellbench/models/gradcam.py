"""Grad-CAM: where in a crop a classifier looks for a class (Selvaraju et al. 2017).

For a chosen layer, the activation maps are weighted by their spatially averaged gradients
of the class score, summed, passed through a ReLU, upsampled bilinearly to the input size
and scaled to [0, 1] per image. `gradcam_stats` summarises the maps (inside the cell mask
when given); `save_gradcam` and `plot_gradcam_panel` write them, atomically.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cellbench.errors import ConfigError
from cellbench.io.atomic import atomic_path

NOT_MAPS = ("pool", "fc")  # modules of the ResNet whose output is no spatial map


def gradcam(
    model: nn.Module,
    layer: nn.Module,
    images: torch.Tensor | np.ndarray,
    class_index: int | np.ndarray | torch.Tensor | None = None,
    batch_size: int = 64,
    upsample: bool = True,
) -> np.ndarray:
    """Grad-CAM maps of `layer` for one class per image.

    Parameters
    ----------
    model : nn.Module
        A classifier returning (N, K) logits; run in eval mode, its mode is restored.
    layer : nn.Module
        A module inside `model` whose output is (N, D, h, w), e.g. ``model.layer4``.
    images : (N, C, H, W) float array or Tensor
    class_index : int or (N,) ints, optional
        The class explained for each image; the predicted class when None.
    batch_size : int
    upsample : bool
        Upsample the maps bilinearly to the input's (H, W) before scaling; False gives the
        layer's own (h, w) map (e.g. 7 x 7 at layer4 of a 224-pixel crop, as the
        perturbation study measures them).

    Returns
    -------
    (N, H, W) or (N, h, w) float32 ndarray
        Maps min-max scaled to [0, 1] per image; all zeros where no location raises the
        class score.

    Examples
    --------
    >>> maps = gradcam(net, net.layer4, crops, class_index=1)  # doctest: +SKIP
    """
    if isinstance(images, torch.Tensor):
        images = images.detach().float()
    else:
        images = torch.from_numpy(np.asarray(images, dtype=np.float32))
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    targets = None
    if class_index is not None:
        targets = torch.as_tensor(np.broadcast_to(np.asarray(class_index), (len(images),)).copy())
    was_training = model.training
    model.eval()
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _module, _inputs, output: captured.append(output))
    try:
        maps = []
        for start in range(0, len(images), batch_size):
            captured.clear()
            chunk = slice(start, start + batch_size)
            batch_targets = None if targets is None else targets[chunk]
            maps.append(_gradcam_batch(model, images[chunk], batch_targets, captured, upsample))
    finally:
        handle.remove()
        model.train(was_training)
    return np.concatenate(maps) if maps else np.zeros((0, *images.shape[2:]), np.float32)


def gradcam_stats(maps: np.ndarray, masks: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Mean activation and coverage (fraction of pixels above 0.5) of each map.

    Parameters
    ----------
    maps : (N, H, W) float array in [0, 1]
    masks : (N, H, W) bool array, optional
        Cell masks; the statistics are computed inside them (NaN for an empty mask).

    Returns
    -------
    dict
        ``mean_activation`` and ``coverage``, each (N,) float64.

    Examples
    --------
    >>> m = np.array([[[0.0, 1.0], [0.6, 0.2]]])
    >>> gradcam_stats(m)["coverage"]
    array([0.5])
    """
    maps = np.asarray(maps, dtype=np.float64)
    if masks is None:
        masks = np.ones(maps.shape, dtype=bool)
    masks = np.asarray(masks, dtype=bool)
    if masks.shape != maps.shape:
        raise ValueError(f"masks must have the maps' shape {maps.shape}, got {masks.shape}")
    pixels = masks.sum(axis=(1, 2)).astype(np.float64)
    inside = np.where(masks, maps, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = inside.sum(axis=(1, 2)) / pixels
        coverage = ((inside > 0.5) & masks).sum(axis=(1, 2)) / pixels
    return {"mean_activation": mean, "coverage": coverage}


def resolve_layer(model: nn.Module, name: str) -> nn.Module:
    """The module of `model` named by a dotted path (``layer4``, ``layer3.1``, ``stem``).

    Raises
    ------
    ConfigError
        Naming ``gradcam_layer``, the value and the valid stage and block names, when the
        path names no module of `model` whose output is a map (``pool``, ``fc`` are not).
    """
    modules = dict(model.named_modules())
    if name in modules and name not in ("", *NOT_MAPS):
        return modules[name]
    valid = [n for n in modules if n and n.count(".") <= 1 and not n.startswith(NOT_MAPS)]
    raise ConfigError(
        f"gradcam_layer: {name!r} is not a module of this ResNet; valid: {', '.join(valid)} "
        "(or a module inside one, e.g. layer4.1.conv2)"
    )


def save_gradcam(maps: np.ndarray, path, **arrays: np.ndarray) -> None:
    """Save (N, H, W) maps (and any further named arrays) to a compressed .npz, atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, maps=np.asarray(maps, dtype=np.float32), **arrays)


def plot_gradcam_panel(
    images: np.ndarray, maps: np.ndarray, path, max_images: int = 8, titles=None
) -> None:
    """Write a PNG panel: each crop (top row) and its Grad-CAM overlay (bottom row).

    Parameters
    ----------
    images : (N, C, H, W) float array
        Shown as the mean of the channels, each scaled to [0, 1].
    maps : (N, H, W) float array in [0, 1]
    path : str or Path
        A .png file, written atomically.
    max_images : int
        Columns of the panel; the first `max_images` crops are shown.
    titles : list of str, optional
        One column title per image, e.g. the class.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = min(len(images), max_images)
    figure = Figure(figsize=(1.6 * max(n, 1), 3.4))
    FigureCanvasAgg(figure)
    axes = figure.subplots(2, max(n, 1), squeeze=False)
    for i in range(n):
        gray = _display(np.asarray(images[i], dtype=np.float64))
        axes[0, i].imshow(gray, cmap="gray", vmin=0, vmax=1)
        axes[1, i].imshow(gray, cmap="gray", vmin=0, vmax=1)
        axes[1, i].imshow(maps[i], cmap="jet", alpha=0.45, vmin=0, vmax=1)
        if titles is not None:
            axes[0, i].set_title(str(titles[i]), fontsize=8)
    for ax in axes.ravel():
        ax.set_axis_off()
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=100)


def _gradcam_batch(model, images, targets, captured, upsample: bool) -> np.ndarray:
    """Maps for one batch; `captured` receives the layer output from the forward hook."""
    device = next(model.parameters()).device
    images = images.to(device)
    with torch.enable_grad():
        logits = model(images)
        if not captured:
            raise ValueError("the layer was not used in the forward pass; pass a module of model")
        activations = captured[-1]
        if targets is None:
            targets = logits.argmax(dim=1)
        score = logits.gather(1, targets.to(device).long()[:, None]).sum()
        (gradients,) = torch.autograd.grad(score, activations)
    weights = gradients.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * activations.detach()).sum(dim=1, keepdim=True))
    if upsample:
        cam = F.interpolate(cam, size=images.shape[2:], mode="bilinear", align_corners=False)
    cam = cam[:, 0]
    low = cam.amin(dim=(1, 2), keepdim=True)
    span = cam.amax(dim=(1, 2), keepdim=True) - low
    cam = torch.where(span > 0, (cam - low) / span.clamp_min(1e-12), torch.zeros_like(cam))
    return cam.cpu().numpy().astype(np.float32)


def _display(image: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (H, W) mean of the channels, each scaled to [0, 1]."""
    low = image.min(axis=(1, 2), keepdims=True)
    span = np.maximum(image.max(axis=(1, 2), keepdims=True) - low, 1e-12)
    return ((image - low) / span).mean(axis=0)
