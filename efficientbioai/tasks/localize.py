"""SMLM localization: a stack of frames in, a localization table out (ThunderSTORM CSV).

The work is defined once, as the streaming job (:mod:`efficientbioai.tasks.localize_job`):
frames (padded to an even size, tiled when large), the network, the spatial integration right
after it on the engine's device, and only the detections copied to the host. ``predict`` runs
that job on an in-memory stack. Scores follow the SMLM challenge
(:mod:`efficientbioai.smlm.localization_metrics`).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import numpy as np

from efficientbioai.engines.base import BaseInfer
from efficientbioai.errors import ConfigError
from efficientbioai.io.frames import check_movie, open_frames
from efficientbioai.io.inputs import MOVIE_READING, assumed, movie_inputs
from efficientbioai.parsers.base import Sample
from efficientbioai.registry import register_task
from efficientbioai.runtime.job import run_in_memory
from efficientbioai.smlm.acquisition import camera_conversion
from efficientbioai.smlm.crlb import simulation_crlb
from efficientbioai.smlm.io import write_thunderstorm
from efficientbioai.smlm.localization_metrics import rmse_by_z, score_localizations
from efficientbioai.smlm.plots import plot_rmse_vs_crlb
from efficientbioai.smlm.render import render, save_rendering
from efficientbioai.smlm.simulated_training import SEEDS, simulate_batch, simulate_blinking_stack, truth_table
from efficientbioai.tasks.base import Task
from efficientbioai.tasks.localize_job import LocalizeJob


@register_task("localize")
class LocalizationTask(Task):
    """Frames → localizations (frame, x, y, z in nm, photons, uncertainty, score)."""

    primary_metric = "jaccard"
    report_metrics = ("jaccard", "rmse_lateral", "rmse_axial", "efficiency_3d")
    default_budget = {"jaccard": -0.01, "rmse_lateral": "+5%"}
    unit = "frames"
    preview_kind = "density"
    #: Pixel of the super-resolution rendering in the report (nm).
    preview_pixel_nm = 10.0

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
            for path in movie_inputs(inf.input):
                with assumed(MOVIE_READING):
                    stack = check_movie(open_frames(path), str(path))
                yield Sample(path.stem, stack, None)
            return
        yield self._simulated("simulated_test", SEEDS["evaluation"])

    def validation_samples(self) -> Iterator[Sample]:
        """Like the evaluation sample, from validation seeds apart from those of training's validation curve."""
        yield self._simulated("simulated_validation", SEEDS["validation"] + 7_000_000)

    def _simulated(self, name: str, seed: int) -> Sample:
        """A simulated test stack (``simulation.test``) with its true localizations."""
        sim = self.simulation().for_test()
        if self.parser.in_channels > 1:  # temporal context needs consecutive, correlated frames
            frames, truth = simulate_blinking_stack(sim, sim.test.frames, seed)
            return Sample(name, frames, truth)
        frames, truth, mask = simulate_batch(sim, sim.test.frames, seed)
        return Sample(name, frames[:, 0], truth_table(truth, mask, sim.pixel_size))

    def example_batch(self, sample: Sample, batch_size: int) -> np.ndarray:
        """The job's first batch of tile-sized frames, repeated to ``batch_size`` windows."""
        h, w = self.config.inference.tile
        frames = np.asarray(sample.image[: batch_size + self.parser.in_channels], np.float32)
        job = self.stream(Sample(sample.name, frames[..., :h, :w]))
        chunk = job.chunks()[0]
        x = job.batches(chunk, job.load(chunk))[0][0]
        return np.ascontiguousarray(x[np.arange(batch_size) % len(x)])

    @cached_property
    def conversion(self):
        """Acquisition camera ADU → training camera ADU (``acquisition`` section), or None."""
        return camera_conversion(self.config)

    def predict(self, engine: BaseInfer, sample: Sample) -> np.ndarray:
        """Localizations of a stack in memory: the streaming job (:meth:`stream`) run here."""
        return run_in_memory(self.stream(sample), engine)

    def stream(self, sample: Sample):
        """The per-chunk pieces for the streaming runtime (:mod:`efficientbioai.tasks.localize_job`)."""
        return LocalizeJob(self, sample.name, sample.image)

    def score(self, output: np.ndarray, reference: np.ndarray) -> dict[str, float]:
        s = score_localizations(output, reference)
        names = ("jaccard", "recall", "precision", "rmse_lateral", "rmse_axial", "efficiency_3d")
        return {name: getattr(s, name) for name in names}

    def preview(self, output: np.ndarray, sample: Sample) -> np.ndarray:
        px = self.simulation().pixel_size
        field = (sample.image.shape[1] * px, sample.image.shape[2] * px)
        return render(output, field, self.preview_pixel_nm, "gaussian")

    def preview_input(self, sample: Sample) -> np.ndarray:
        """The mean of the first frames, on the rendering's grid."""
        scale = max(1, round(self.simulation().pixel_size / self.preview_pixel_nm))
        mean = np.asarray(sample.image[: min(50, len(sample.image))], np.float32).mean(0)
        return np.kron(mean, np.ones((scale, scale), np.float32))

    def extras(self, outputs: list[np.ndarray], samples: list[Sample], folder: Path) -> dict:
        """A super-resolution rendering per stack and, with ground truth, RMSE vs CRLB over z."""
        sim = self.simulation()
        files = {}
        for output, sample in zip(outputs, samples):
            _, png = save_rendering(self.preview(output, sample), folder / f"{sample.name}_sr")
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
