"""SMLM localization: a stack of frames in, a localization table out (ThunderSTORM CSV).

The network runs on whole frames (fully convolutional; padded to an even size), the
spatial integration runs right after it as torch ops, and only the final list of detections
is built on the host. Scores follow the SMLM challenge (:mod:`efficientbioai.smlm.localization_metrics`).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from efficientbioai.engines.base import BaseInfer
from efficientbioai.errors import ConfigError, InputError
from efficientbioai.io.inputs import MOVIE_READING, assumed, movie_inputs
from efficientbioai.parsers.base import Sample
from efficientbioai.registry import register_task
from efficientbioai.smlm.acquisition import camera_conversion
from efficientbioai.smlm.io import write_thunderstorm
from efficientbioai.smlm.localization_metrics import score_localizations
from efficientbioai.smlm.postprocess import SpatialIntegration, dense_to_table, is_dense
from efficientbioai.tasks.base import Task

#: Smallest frame side the network accepts (its receptive field is ~67 px; below 8 px nothing works).
MIN_FRAME = 8


def check_stack(stack: np.ndarray, name: str = "stack") -> np.ndarray:
    """A ``(T, H, W)`` float32 stack, or an :class:`InputError` saying what is wrong."""
    if stack.ndim == 2:
        stack = stack[None]
    if stack.ndim != 3:
        raise InputError(f"{name}: an SMLM stack must be (frames, height, width); got shape {stack.shape}")
    if min(stack.shape[1:]) < MIN_FRAME:
        raise InputError(f"{name}: frames of {stack.shape[1:]} px are smaller than the minimum {MIN_FRAME} px")
    return np.ascontiguousarray(stack, dtype=np.float32)


def check_lazy_stack(stack, name: str = "stack"):
    """``stack`` (a lazily read source) if it is ``(frames, height, width)`` (or one 2D frame), else
    the :class:`InputError` :func:`check_stack` gives; pixels are checked per chunk as they are read."""
    if stack.ndim == 2:
        return check_stack(np.asarray(stack), name)
    if stack.ndim != 3:
        raise InputError(f"{name}: an SMLM stack must be (frames, height, width); got shape {stack.shape}")
    if min(stack.shape[1:]) < MIN_FRAME:
        raise InputError(f"{name}: frames of {stack.shape[1:]} px are smaller than the minimum {MIN_FRAME} px")
    return stack


@register_task("localize")
class LocalizationTask(Task):
    """Frames → localizations (frame, x, y, z in nm, photons, uncertainty, score)."""

    primary_metric = "jaccard"
    report_metrics = ("jaccard", "rmse_lateral", "rmse_axial", "efficiency_3d")
    unit = "frames"

    def count(self, sample: Sample) -> int:
        return int(len(sample.image))

    def simulation(self):
        sim = self.config.simulation
        if sim is None:
            raise ConfigError("the localize task needs a 'simulation' section (pixel size at least)")
        return sim

    def samples(self) -> Iterator[Sample]:
        inf = self.config.inference
        if inf.input is not None:  # read lazily: the runtime streams them a chunk at a time
            from efficientbioai.io.frames import open_frames

            for path in movie_inputs(inf.input):
                with assumed(MOVIE_READING):
                    stack = check_lazy_stack(open_frames(path), str(path))
                yield Sample(path.stem, stack, None)
            return
        from efficientbioai.smlm.simulated_training import SEEDS, simulate_batch, simulate_blinking_stack, truth_table

        sim = self.simulation().for_test()
        if self.parser.in_channels > 1:  # temporal context needs consecutive, correlated frames
            frames, truth = simulate_blinking_stack(sim, sim.test.frames, SEEDS["evaluation"])
            yield Sample("simulated_test", frames, truth)
            return
        frames, truth, mask = simulate_batch(sim, sim.test.frames, SEEDS["evaluation"])
        yield Sample("simulated_test", frames[:, 0], truth_table(truth, mask, sim.pixel_size))

    def _windows(self, stack: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Network inputs for frames ``start..stop-1``: ``(n, C, H, W)``, C consecutive frames
        centred on each (edge frames repeated) when the model takes temporal context."""
        c = self.parser.in_channels
        if c == 1:
            return stack[start:stop, None]
        half = c // 2
        idx = np.clip(np.arange(start, stop)[:, None] + np.arange(-half, half + 1)[None], 0, len(stack) - 1)
        return stack[idx]

    def example_batch(self, sample: Sample, batch_size: int) -> np.ndarray:
        h, w = self.config.inference.tile
        stack = np.asarray(sample.image[: batch_size + self.parser.in_channels], np.float32)[:, :h, :w]
        idx = np.arange(batch_size) % len(stack)
        return np.ascontiguousarray(np.concatenate([self._windows(stack, i, i + 1) for i in idx]))

    @cached_property
    def conversion(self):
        """Acquisition camera ADU → training camera ADU (``acquisition`` section), or None."""
        return camera_conversion(self.config)

    def predict(self, engine: BaseInfer, sample: Sample) -> np.ndarray:
        stack = check_stack(sample.image, sample.name)
        if self.conversion is not None:
            stack = self.conversion(stack)
        t, h, w = stack.shape
        pad = ((0, 0), (0, h % 2), (0, w % 2))  # one 2× pooling inside the network
        stack = np.pad(stack, pad, mode="edge") if any(p[1] for p in pad) else stack
        post = SpatialIntegration.from_settings(self.config.inference.localization, self.simulation().pixel_size)
        bs = self.config.inference.batch_size
        batches = (self._windows(stack, i, min(i + bs, t)) for i in range(0, t, bs))
        tables = []
        for i, out in enumerate(engine.map_batches(batches)):
            out = torch.from_numpy(np.asarray(out)[..., :h, :w])
            dense = out if is_dense(out) else post(out)
            tables.append(dense_to_table(dense, first_frame=i * bs + 1))
        return np.concatenate(tables) if tables else np.zeros((0, 7))

    def stream(self, sample: Sample):
        """The per-chunk pieces for the streaming runtime (:mod:`efficientbioai.tasks.localize_job`)."""
        from efficientbioai.tasks.localize_job import LocalizeJob

        return LocalizeJob(self, sample.name, sample.image)

    def score(self, output: np.ndarray, reference: np.ndarray) -> dict[str, float]:
        s = score_localizations(output, reference)
        return {
            "jaccard": s.jaccard,
            "recall": s.recall,
            "precision": s.precision,
            "rmse_lateral": s.rmse_lateral,
            "rmse_axial": s.rmse_axial,
            "efficiency_3d": s.efficiency_3d,
        }

    def extras(self, outputs: list[np.ndarray], samples: list[Sample], folder: Path) -> dict:
        """A super-resolution rendering per stack and, with ground truth, RMSE vs CRLB over z."""
        from efficientbioai.smlm.crlb import simulation_crlb
        from efficientbioai.smlm.localization_metrics import rmse_by_z
        from efficientbioai.smlm.plots import plot_rmse_vs_crlb
        from efficientbioai.smlm.render import render, save_rendering

        sim = self.simulation()
        files = {}
        for output, sample in zip(outputs, samples):
            field = (sample.image.shape[1] * sim.pixel_size, sample.image.shape[2] * sim.pixel_size)
            tif, png = save_rendering(render(output, field, 10.0, "gaussian"), folder / f"{sample.name}_sr")
            files[f"{sample.name}_render"] = str(png)
            if sample.target is None or len(output) == 0:
                continue
            lo, hi = sim.z_range_nm if sim.z_range_nm[1] > sim.z_range_nm[0] else (-1.0, 1.0)
            edges = np.linspace(lo, hi, 8)
            z, lat, ax = rmse_by_z(output, sample.target, edges)
            test = sim.for_test()
            bound = simulation_crlb(sim, z, float(np.mean(test.photons)), float(np.mean(test.background)))
            plot = plot_rmse_vs_crlb(z, lat, ax, bound[:, 0], bound[:, 2], folder / f"{sample.name}_rmse_vs_crlb.png")
            files[f"{sample.name}_rmse_vs_crlb"] = str(plot)
            files["mean_crlb_lateral_nm"] = float(np.nanmean(bound[:, 0]))
        return files

    def write(self, output: np.ndarray, folder: Path, name: str) -> Path:
        return write_thunderstorm(folder / f"{name}.csv", output[:, :6])
