"""Parser for MONAI's ``UNet``, ``BasicUNet`` and ``DynUNet`` (2D and 3D).

``model.params`` holds ``net`` plus the network's own constructor arguments, e.g.::

    model:
      parser: monai_unet
      checkpoint: ../efficientbioai/weights/monai_unet_denoise3d.pt
      params: {net: UNet, spatial_dims: 3, in_channels: 1, out_channels: 1,
               channels: [16, 32, 64, 128], strides: [2, 2, 2], num_res_units: 2}
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from torch import nn

from efficientbioai.datasets.fluorescence import SEED_OFFSETS, make_pair
from efficientbioai.errors import BackendUnavailableError, ConfigError
from efficientbioai.parsers.base import BaseParser
from efficientbioai.registry import register_parser

NETS = ("UNet", "BasicUNet", "DynUNet")

#: The last decoder stage and output convolution of each net, by exported node name. Kept in
#: float by default: their inputs join full-resolution skips with upsampled features and have
#: heavy-tailed ranges (max/std ≈ 60 on the bundled 3D denoiser), which per-tensor int8 resolves
#: poorly; they are a small share of the compute.
OUTPUT_LAYERS = {
    "UNet": ["/model/model.2/*"],
    "BasicUNet": ["/upcat_1/*", "/final_conv/*"],
    "DynUNet": ["/output_block/*"],
}


def _net_class(name: str) -> type[nn.Module]:
    try:
        from monai.networks import nets
    except ImportError:
        raise BackendUnavailableError(
            "the monai_unet parser needs MONAI: pip install 'efficientbioai[monai]'"
        ) from None
    if name not in NETS:
        raise ConfigError(f"model.params.net: {name!r} is not supported; choose one of {NETS}")
    return getattr(nets, name)


def _dynunet_defaults(kwargs: dict[str, Any]) -> dict[str, Any]:
    """DynUNet needs per-level kernels and strides; fill a 4-level U-Net when they are absent."""
    strides = kwargs.setdefault("strides", [1, 2, 2, 2])
    kwargs.setdefault("kernel_size", [3] * len(strides))
    kwargs.setdefault("upsample_kernel_size", list(strides[1:]))
    return kwargs


@register_parser("monai_unet")
class MonaiUNetParser(BaseParser):
    """MONAI U-Nets for image-to-image (``denoise``) and semantic segmentation (``segment``)."""

    def build_model(self) -> nn.Module:
        kwargs = dict(self.params)
        name = kwargs.pop("net", "UNet")
        cls = _net_class(name)
        kwargs.setdefault("spatial_dims", len(self.config.inference.tile))
        kwargs.setdefault("in_channels", 1)
        kwargs.setdefault("out_channels", 1)
        if name == "DynUNet":
            kwargs = _dynunet_defaults(kwargs)
        accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "args", "kwargs"}
        unknown = sorted(set(kwargs) - accepted)
        if unknown:
            raise ConfigError(
                f"model.params: {cls.__name__} has no argument(s) {unknown}; it accepts {sorted(accepted)}"
            )
        try:
            return cls(**kwargs)
        except (TypeError, ValueError, AssertionError, IndexError) as exc:
            raise ConfigError(f"model.params: cannot build {cls.__name__}({kwargs}): {exc}") from None

    def default_keep_float(self) -> list[str]:
        return list(OUTPUT_LAYERS[self.params.get("net", "UNet")])

    def synthetic_pair(self, split: str, index: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Fluorescence-like blobs and filaments; target = clean image (denoise) or its mask."""
        if len(shape) != self.spatial_dims:
            raise ConfigError(f"data.{split}.shape {list(shape)} must have {self.spatial_dims} sizes")
        noisy, clean = make_pair(shape, SEED_OFFSETS[split] + index)
        if self.task_name == "segment":
            return noisy, (clean > 0.25).astype(np.float32)
        return noisy, clean
