"""Parser for Cellpose 3 (CPnet): a user's own cellpose model file, exported without a fork.

model:
  parser: cellpose
  checkpoint: path/to/cellpose_model        # a file cellpose 3 saved (train_seg / the GUI)
  params: {nchan: 2, nbase: [32, 64, 128, 256], nout: 3, diam_mean: 30}
cellpose: {channels: [0, 0], flow_threshold: 0.4, cellprob_threshold: 0.0}

The network is built exactly as ``cellpose.models.CellposeModel`` builds it, so cellpose's own
model files load (``weights_only=True``, every key checked). ``nbase`` lists the widths after
the input channels; cellpose's own list with ``nchan`` first (``[2, 32, 64, 128, 256]``) is
accepted too. Only local files: cellpose's built-in names (``cyto3``, ``nuclei``, ...) would be
downloaded, which this toolbox never does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import numpy as np
from torch import nn

from efficientbioai.cellpose._import import cellpose_module
from efficientbioai.cellpose.network import STANDARD_NBASE, ExportableCPnet, build_cpnet
from efficientbioai.cellpose.segment import prepare, rescale_factor
from efficientbioai.cellpose.settings import CellposeSection
from efficientbioai.cellpose.train_seg import fine_tune_cellpose
from efficientbioai.datasets.nuclei import SEED_OFFSETS, synthetic_nuclei
from efficientbioai.errors import ConfigError, InputError
from efficientbioai.parsers.base import BaseParser, Sample
from efficientbioai.parsers.checkpoint import load_state_dict, read_state_dict
from efficientbioai.parsers.data_splits import random_crop
from efficientbioai.registry import register_parser

log = logging.getLogger(__name__)

_PARAMS = ("nchan", "nbase", "nout", "diam_mean")
#: Entries cellpose < 2.0 files lack; cellpose 3 then keeps its constructor's ``diam_mean``.
_DIAMETERS = ("diam_mean", "diam_labels")
#: cellpose's built-in nuclei file: ``CellposeModel`` rescales it with diam_mean 17, whatever
#: the file holds (``models.get_model_params``).
_NUCLEI_FILE, _NUCLEI_DIAM_MEAN = "nucleitorch_0", 17.0
#: Names cellpose resolves by downloading (``models.MODEL_NAMES`` and the size models).
_BUILTIN_NAMES = {
    "cyto",
    "cyto2",
    "cyto3",
    "nuclei",
    "tissuenet_cp3",
    "livecell_cp3",
    "yeast_PhC_cp3",
    "yeast_BF_cp3",
    "bact_phase_cp3",
    "bact_fluor_cp3",
    "deepbacs_cp3",
    "cyto2_cp3",
    "transformer_cp3",
    "neurips_cellpose_default",
    "neurips_cellpose_transformer",
    "cpsam",
}


@register_parser("cellpose")
class CellposeParser(BaseParser):
    """CPnet: 2D images in (``nchan`` channels, cellpose-normalised), flows + cell probability out."""

    task = "instance"
    spatial_dims = 2

    @property
    def in_channels(self) -> int:
        return int(self.params.get("nchan", 2))

    @property
    def settings(self) -> CellposeSection:
        return self.config.cellpose or CellposeSection()

    def build_model(self) -> nn.Module:
        self.checked_params(_PARAMS, "cellpose")
        nbase = tuple(int(n) for n in self.params.get("nbase", STANDARD_NBASE))
        if len(nbase) > 1 and nbase[0] == self.in_channels:
            nbase = nbase[1:]  # cellpose's own convention: [nchan, *widths]
        net = build_cpnet(
            nchan=self.in_channels,
            nbase=nbase,
            nout=int(self.params.get("nout", 3)),
            diam_mean=float(self.params.get("diam_mean", 30.0)),
        )
        return ExportableCPnet(net)

    def load_model(self) -> nn.Module:
        model = self.build_model()
        ckpt = self.config.model.checkpoint
        if ckpt is not None:
            path = Path(ckpt)
            if not path.is_file() and path.name in _BUILTIN_NAMES:
                raise InputError(
                    f"model.checkpoint {path.name!r} is a cellpose built-in name; cellpose would download it, "
                    "and this toolbox makes no network calls. Download the model file once on a machine with "
                    "internet (it lands in ~/.cellpose/models) and give its local path."
                )
            state = read_state_dict(path)
            if "W2" in state:
                raise InputError(f"{path} is a cellpose 4 (CP-SAM) model; this parser runs cellpose 3 CPnet models")
            # a cellpose model file holds CPnet's keys; compress.py's model_fp32.pt holds the wrapper's
            target = model if all(k.startswith("net.") for k in state) else model.net
            load_state_dict(target, path, _with_diameters(state, target, path))
        return model.eval()

    def default_keep_float(self) -> list[str]:
        """CPnet's last 1×1 conv (flows and cell probability): dynamics follow the flows for
        hundreds of steps, so their small errors add up."""
        return ["/output/*"]

    def fine_tune(self, model: nn.Module, reference: nn.Module, settings) -> dict:
        """After pruning: cellpose's own ``train_seg`` on generated nuclei (flows + cell probability)."""
        return fine_tune_cellpose(model.net, self.settings, settings.steps, settings.lr, settings.batch_size)

    # -- data ---------------------------------------------------------------------------
    def channels_first(self, image: np.ndarray, name: str = "image") -> np.ndarray:
        """2D grayscale ``(H, W)`` or ``(C, H, W)`` with C ≤ 3, as cellpose's ``channels`` select from."""
        if image.ndim == 2 or (image.ndim == 3 and image.shape[0] <= 3):
            if min(image.shape[-2:]) < 16:
                raise InputError(f"{name}: image {image.shape} is smaller than 16 pixels on a side")
            return image
        raise InputError(
            f"{name}: shape {image.shape}; cellpose needs a 2D image (H, W) or channels first (C ≤ 3, H, W)"
        )

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """Cellpose's normalisation at the model's scale → ``(nchan, H', W')``."""
        x = prepare(image, self.settings, self.in_channels)
        rescale = self.rescale()
        if rescale != 1.0:
            x = cellpose_module("transforms").resize_image(x, rsz=rescale)
        return np.ascontiguousarray(x.transpose(2, 0, 1))

    def rescale(self) -> float:
        """Cellpose's resize factor for this model and config."""
        return rescale_factor(self.settings, *self._diameters)

    @cached_property
    def _diameters(self) -> tuple[float, float]:
        """``(diam_mean, diam_labels)`` from the checkpoint (they are parameters in cellpose files)."""
        ckpt = self.config.model.checkpoint
        default = float(self.params.get("diam_mean", 30.0))
        if ckpt is None or not Path(ckpt).is_file():
            return default, default
        state = {k.removeprefix("net."): v for k, v in read_state_dict(ckpt).items()}
        mean = float(state["diam_mean"].item()) if "diam_mean" in state else default
        if Path(ckpt).name.endswith(_NUCLEI_FILE):
            mean = _NUCLEI_DIAM_MEAN
        labels = float(state["diam_labels"].item()) if "diam_labels" in state else mean
        return mean, labels

    def synthetic_pair(self, split: str, index: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Generated nuclei image and its labels (split-specific seeds)."""
        if len(shape) != 2:
            raise ConfigError(f"cellpose synthetic images are 2D; got shape {list(shape)}")
        return synthetic_nuclei(tuple(shape), SEED_OFFSETS[split] + index)

    def calibration_inputs(self) -> Iterator[np.ndarray]:
        """Tiles of cellpose-normalised images at the deployed tile size."""
        tile = tuple(self.config.inference.tile)
        rng = np.random.default_rng(0)
        for sample in self.split_samples("calibration", self.config.data.calibration):
            yield random_crop(self.preprocess(sample.image), tile, rng)[None]

    def evaluation_samples(self) -> Iterator[Sample]:
        for sample in super().evaluation_samples():
            if sample.target is not None:
                sample.target = np.asarray(sample.target).astype(np.int32)
            yield sample


def _with_diameters(state: dict, target: nn.Module, path: Path) -> dict:
    """Fill ``diam_mean`` / ``diam_labels`` from ``model.params`` where the file has neither
    (cellpose < 2.0 saved none; cellpose 3 loads such files and keeps its own ``diam_mean``)."""
    own = target.state_dict()
    missing = [k for k in own if k.removeprefix("net.") in _DIAMETERS and k not in state]
    if len(missing) == len(_DIAMETERS):
        log.warning("%s has no diam_mean/diam_labels (cellpose < 2.0); using model.params.diam_mean", path)
        state = {**state, **{k: own[k] for k in missing}}
    return state
