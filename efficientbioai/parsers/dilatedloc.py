"""Parser for DilatedLoc (SMLM localization): model from ``model.params``, data from ``simulation``.

model:
  parser: dilatedloc
  checkpoint: ../efficientbioai/weights/dilatedloc_astig3d.pt
  params: {width: 48, frames: 1, z_scale: 700, photon_scale: 20000}
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch import nn

from efficientbioai.errors import ConfigError
from efficientbioai.models.dilatedloc import DilatedLoc
from efficientbioai.parsers.base import BaseParser
from efficientbioai.parsers.movie_calibration import movie_calibration
from efficientbioai.parsers.training_crops import tuning_record
from efficientbioai.registry import register_parser
from efficientbioai.smlm.acquisition import camera_conversion
from efficientbioai.smlm.postprocess import InGraphLocalizer, SpatialIntegration
from efficientbioai.smlm.simulated_training import SEEDS, fine_tune_dilatedloc, simulate_batch, taylor_loss

_PARAMS = ("width", "frames", "z_scale", "photon_scale")


@register_parser("dilatedloc")
class DilatedLocParser(BaseParser):
    """DilatedLoc; raw camera frames in (the network normalises them itself), 9 maps out."""

    task = "localize"
    spatial_dims = 2

    @property
    def in_channels(self) -> int:
        return int(self.params.get("frames", 1))

    def build_model(self) -> nn.Module:
        return DilatedLoc(**self.checked_params(_PARAMS, "DilatedLoc"))

    def default_keep_float(self) -> list[str]:
        """The output heads and stage (offset and photon regression is what int8 hurts first),
        and the first layer: it sees raw camera counts, so rounding its input adds error at the
        scale of the shot noise. With it in int8 the shipped 3D model's int8 RMSE was 12.5 vs
        11.5 nm fp32 (+9%); in float 11.8 nm (+2.6%) (`configs/dilatedloc_astig3d.yaml`).
        Post-processing exported into the graph stays float too (it compares probabilities)."""
        post = ["/post/*"] if self.config.inference.localization.in_graph else []
        return ["/l1/*", "/head_*", "/output/*", *post]

    def export_graph(self, model: nn.Module) -> nn.Module:
        """With ``inference.localization.in_graph``: the network followed by its post-processing,
        so engines return the dense maps ``(N, 6, H, W)`` and only the rows leave the engine."""
        loc = self.config.inference.localization
        if not loc.in_graph:
            return model
        return InGraphLocalizer(model, SpatialIntegration.from_settings(loc, self.simulation().pixel_size))

    def protected_layers(self, model: nn.Module) -> list[str]:
        """The first layer, every output head and the output stage."""
        return ["l1", "head_*", "output"]

    def fine_tune(self, model: nn.Module, reference: nn.Module, settings) -> dict:
        """After pruning: more DilatedLoc training on freshly simulated frames (its own loss)."""
        sim = self.simulation().model_copy(update={"frame_shape": list(self.config.inference.tile)})
        curve = fine_tune_dilatedloc(model, sim, settings, reference)
        return tuning_record("dilatedloc training (simulated frames)", settings, curve)

    def taylor_loss_fn(self):
        """``prune.importance: taylor`` ranks channels by the DilatedLoc loss's gradients on
        simulated training tiles (the parser has no training files to draw from)."""
        sim = self.simulation().model_copy(update={"frame_shape": list(self.config.inference.tile)})
        return taylor_loss(sim, self.in_channels)

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        return np.asarray(image, dtype=np.float32)

    def simulation(self):
        if self.config.simulation is None:
            raise ConfigError("the dilatedloc parser needs a 'simulation' section (pixel size, PSF, camera)")
        return self.config.simulation

    def calibration_inputs(self) -> Iterator[np.ndarray]:
        """The user's raw frames (``data.calibration.source: files``), else simulated frames at
        the tile size from the calibration seed range."""
        spec = self.config.data.calibration
        if spec.source == "files":
            tile, convert = tuple(self.config.inference.tile), camera_conversion(self.config)
            yield from movie_calibration(spec, tile, self.in_channels, SEEDS["calibration"], convert)
            return
        sim = self.simulation().model_copy(update={"frame_shape": list(self.config.inference.tile)})
        for i in range(self.config.data.calibration.num_samples):
            frames, _, _ = simulate_batch(sim, 1, SEEDS["calibration"] + i)
            yield frames
