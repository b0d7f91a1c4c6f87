"""Parser for Deep-STORM (super-resolution reconstruction from high-density SMLM frames).

model:
  parser: deepstorm
  checkpoint: ../efficientbioai/weights/deepstorm_unet.pt
  params: {variant: unet, width: 16, upsample: 8, sum_frames: true}

The network takes raw camera frames (it normalises each frame itself with the training set's
statistics, stored as buffers in the checkpoint) and returns the ×``upsample`` spike image —
with ``sum_frames`` (the default) already clipped and summed over the batch, so an engine hands
back one image per batch. Calibration frames come from the ``simulation`` section (uniformly
placed emitters, as in training) with their own seed range.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from efficientbioai.deepstorm import SEEDS
from efficientbioai.deepstorm.settings import DeepSTORMSection
from efficientbioai.deepstorm.simulated_training import fine_tune_deepstorm
from efficientbioai.errors import ConfigError
from efficientbioai.models.deepstorm import VARIANTS, DeepSTORM, SummedShuffleHead
from efficientbioai.parsers.base import BaseParser
from efficientbioai.parsers.movie_calibration import movie_calibration
from efficientbioai.parsers.training_crops import tuning_record
from efficientbioai.registry import register_parser
from efficientbioai.smlm.settings import SimulationSection
from efficientbioai.smlm.simulate import simulate_stack

_PARAMS = ("variant", "width", "upsample", "sum_frames")


@register_parser("deepstorm")
class DeepSTORMParser(BaseParser):
    """Deep-STORM (``original``) or its U-Net variant (``unet``); raw frames in, SR image out."""

    task = "reconstruct"
    spatial_dims = 2
    in_channels = 1

    @property
    def upsample(self) -> int:
        return int(self.params.get("upsample", 8))

    @property
    def sum_frames(self) -> bool:
        return bool(self.params.get("sum_frames", True))

    @property
    def settings(self) -> DeepSTORMSection:
        """The ``deepstorm`` section, or its defaults."""
        return self.config.deepstorm or DeepSTORMSection()

    @property
    def simulation(self) -> SimulationSection:
        if self.config.simulation is None:
            raise ConfigError("the deepstorm parser needs a 'simulation' section (pixel size, PSF, camera, density)")
        return self.config.simulation

    def build_model(self, training: bool = False) -> nn.Module:
        """The deployed network (clipped, summed if ``sum_frames``); ``training=True``: the linear
        per-frame output the loss needs."""
        variant = self.checked_params(_PARAMS, "Deep-STORM").get("variant", "unet")
        if variant not in VARIANTS:
            raise ConfigError(f"model.params.variant must be one of {list(VARIANTS)}, got {variant!r}")
        try:
            return DeepSTORM(
                variant=variant,
                width=int(self.params.get("width", 32)),
                upsample=self.upsample,
                sum_frames=self.sum_frames and not training,
                clip=not training,
            )
        except ValueError as exc:
            raise ConfigError(f"model.params: {exc}") from None

    def example_input(self, batch_size: int = 1) -> torch.Tensor:
        tile = self.config.inference.tile
        multiple = self.build_model().multiple
        if len(tile) != 2 or any(t % multiple for t in tile):
            raise ConfigError(f"inference.tile {tile} must be two sizes, each a multiple of {multiple} for this model")
        return torch.zeros(batch_size, 1, *tile)

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """Batch and frame size vary; the output is ``upsample ×`` the frame and, when summed, one image."""
        exp = self.config.export
        inp: dict[int, str] = {0: "batch"} if exp.dynamic_batch else {}
        out: dict[int, str] = {0: "batch"} if exp.dynamic_batch and not self.sum_frames else {}
        if exp.dynamic_spatial:
            inp.update({2: "height", 3: "width"})
            out.update({2: "sr_height", 3: "sr_width"})
        return {"input": inp, "output": out}

    def export_graph(self, model: nn.Module) -> nn.Module:
        """With the frame sum in the graph, the U-Net's output layer is exported reordered
        (1×1 conv, clip, sum, then pixel shuffle: :class:`SummedShuffleHead`)."""
        if not (getattr(model, "sum_frames", False) and getattr(model, "variant", None) == "unet"):
            return model
        if not isinstance(model.body.head, nn.ConvTranspose2d):
            return model
        graph = copy.deepcopy(model)
        graph.body.head = SummedShuffleHead(graph.body.head)
        return graph

    def default_keep_float(self) -> list[str]:
        """The linear output layer stays float: it maps features to spike amplitudes whose sum
        over hundreds of frames is the result, so its rounding error would add up. (The clip or
        sum after it keeps its name: OpenVINO renames the op that produces the graph output.)"""
        return ["/body/head/*"]

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        return np.asarray(image, dtype=np.float32)

    def fine_tune(self, model: nn.Module, reference: nn.Module, settings) -> dict:
        """After pruning: more Deep-STORM training on simulated patches (its own loss)."""
        curve = fine_tune_deepstorm(model, self.simulation, self.settings, settings, reference)
        return tuning_record("deepstorm training (simulated patches)", settings, curve)

    def calibration_inputs(self) -> Iterator[np.ndarray]:
        """The user's raw frames (``data.calibration.source: files``), else simulated frames
        ``(1, 1, *tile)`` like the training frames, from the calibration seeds."""
        spec = self.config.data.calibration
        if spec.source == "files":
            yield from movie_calibration(spec, tuple(self.config.inference.tile), 1, SEEDS["calibration"])
            return
        sim = self.simulation
        tile = tuple(self.config.inference.tile)
        rng = np.random.default_rng(SEEDS["calibration"])
        psf, camera = sim.psf.build(), sim.camera.build()
        for i in range(self.config.data.calibration.num_samples):
            density = rng.uniform(*sim.density_per_um2)
            frames, _ = simulate_stack(
                1,
                tile,
                sim.pixel_size,
                psf,
                sim.sampler(density),
                tuple(sim.background),
                camera,
                SEEDS["calibration"] + i,
            )
            yield frames[:, None]
