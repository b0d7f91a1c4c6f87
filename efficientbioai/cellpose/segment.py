"""Cellpose's inference around any of our engines: its normalisation, its 224-pixel tiling,
then its dynamics for masks on the CPU.

Nothing is re-implemented: :class:`EngineAsCPnet` looks like a CPnet to
``cellpose.core.run_net`` (the function ``CellposeModel.eval`` calls), so cellpose itself cuts
the tiles, blends them and resizes; only the network call goes to ONNX Runtime, OpenVINO or
torch. The steps mirror the 2D path of ``CellposeModel.eval`` in cellpose 3.1.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from efficientbioai.cellpose._import import cellpose_module
from efficientbioai.cellpose.settings import CellposeSection
from efficientbioai.errors import InputError

#: An engine, or any function mapping a float32 batch to the network's output.
Predict = Callable[[np.ndarray], np.ndarray]

#: Width of the style vector cellpose's ``run_net`` preallocates (unused here: it only feeds
#: cellpose's size model, which this toolbox does not run).
_STYLE_WIDTH = 256


class EngineAsCPnet:
    """The slice of CPnet's interface ``cellpose.core.run_net`` uses, backed by an engine."""

    mkldnn = False
    device = torch.device("cpu")

    def __init__(self, engine: Predict, nout: int = 3) -> None:
        self.engine, self.nout = engine, nout

    def eval(self) -> EngineAsCPnet:
        return self

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = np.asarray(self.engine(np.ascontiguousarray(x.numpy(), dtype=np.float32)), dtype=np.float32)
        return torch.from_numpy(y), torch.full((len(y), _STYLE_WIDTH), _STYLE_WIDTH**-0.5)


def prepare(image: np.ndarray, settings: CellposeSection, nchan: int) -> np.ndarray:
    """Raw ``(H, W)`` or channels-first ``(C, H, W)`` image → normalised ``(H, W, nchan)``, as
    ``CellposeModel.eval`` does (``convert_image`` then 1st–99th percentile per channel)."""
    transforms = cellpose_module("transforms")
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise InputError(f"cellpose segments 2D images (H, W) or (C, H, W); got shape {image.shape}")
    if not np.isfinite(image).all():
        raise InputError("image contains NaN or infinite values")
    x = transforms.convert_image(
        image.astype(np.float32), list(settings.channels), channel_axis=0 if image.ndim == 3 else None, nchan=nchan
    )
    x = transforms.normalize_img(x, normalize=True, percentile=(1.0, 99.0), axis=-1)
    return np.ascontiguousarray(x, dtype=np.float32)


def rescale_factor(settings: CellposeSection, diam_mean: float, diam_labels: float) -> float:
    """``diam_mean / diameter`` if a diameter is set, else ``diam_mean / diam_labels`` (cellpose)."""
    return diam_mean / settings.diameter if settings.diameter else diam_mean / diam_labels


def predict_flows(
    engine: Predict,
    image_hwc: np.ndarray,
    settings: CellposeSection,
    rescale: float,
    batch_size: int = 8,
    bsize: int = 224,
    nout: int = 3,
) -> np.ndarray:
    """Flows and cell probability ``(3, H, W)`` (dY, dX, cellprob) at the image's own size."""
    core, transforms = cellpose_module("core"), cellpose_module("transforms")
    h, w = image_hwc.shape[:2]
    yf, _ = core.run_net(
        EngineAsCPnet(engine, nout),
        image_hwc[None],
        batch_size=batch_size,
        augment=settings.augment,
        tile_overlap=settings.tile_overlap,
        bsize=bsize,
        rsz=rescale if rescale != 1.0 else None,
    )
    if rescale != 1.0:
        yf = transforms.resize_image(yf, h, w)
    return np.ascontiguousarray(yf[0].transpose(2, 0, 1))


def masks_from_flows(flows: np.ndarray, settings: CellposeSection, rescale: float) -> np.ndarray:
    """Cellpose's dynamics (``resize_and_compute_masks``): label image, 0 = background."""
    dynamics = cellpose_module("dynamics")
    flows = np.ascontiguousarray(flows, dtype=np.float32)  # cellpose's numba kernels are float32-only
    niter = settings.niter or int(200 / rescale)
    masks = dynamics.resize_and_compute_masks(
        flows[:2],
        flows[2],
        niter=niter,
        cellprob_threshold=settings.cellprob_threshold,
        flow_threshold=settings.flow_threshold,
        interp=True,
        min_size=settings.min_size,
        max_size_fraction=0.4,
        device=torch.device("cpu"),
    )
    return np.asarray(masks).astype(np.uint32)
