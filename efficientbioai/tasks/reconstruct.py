"""Deep-STORM reconstruction: a stack of high-density frames in, one super-resolution image out.

Frames are streamed (TIFF pages / memory-mapped ``.npy`` read a batch at a time), predicted on
the ×``upsample`` grid and summed into a preallocated accumulator — on the device for torch,
inside the graph for exported models (see :mod:`efficientbioai.deepstorm.accumulate`). The
result is scored against the ground-truth image rendered from the true positions with NMSE and
PSNR (:mod:`efficientbioai.deepstorm.reconstruction_metrics`), and written as TIFF + PNG; the deployed variant
also writes the ground truth rendering and the local maxima as an SMLM CSV.

Without ``inference.input`` the task reconstructs a simulated microtubule-like test stack
(``simulation.test``: frames, density, photons, background; ``deepstorm.filaments``) from its own
seed range, never used for training or calibration.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import numpy as np

from efficientbioai.deepstorm import SEEDS
from efficientbioai.deepstorm.filaments import simulate_filament_stack
from efficientbioai.deepstorm.kernel import blur
from efficientbioai.deepstorm.maxima import local_maxima
from efficientbioai.deepstorm.reconstruction_metrics import reconstruction_scores, truth_image
from efficientbioai.deepstorm.settings import DeepSTORMSection
from efficientbioai.deepstorm.stack import check_stack
from efficientbioai.engines.base import BaseInfer
from efficientbioai.errors import ConfigError, InputError
from efficientbioai.io.frames import open_frames
from efficientbioai.io.images import read_image
from efficientbioai.io.inputs import MOVIE_READING, assumed, movie_inputs
from efficientbioai.parsers.base import Sample
from efficientbioai.registry import register_task
from efficientbioai.runtime.job import run_in_memory
from efficientbioai.smlm.io import read_localizations, write_thunderstorm
from efficientbioai.smlm.render import save_rendering
from efficientbioai.tasks.base import Task
from efficientbioai.tasks.reconstruct_job import ReconstructJob


@register_task("reconstruct")
class ReconstructionTask(Task):
    """Frames → summed super-resolution image; NMSE (%) and PSNR (dB) against the truth image."""

    primary_metric = "nmse"
    report_metrics = ("nmse", "psnr")
    default_budget = {"nmse": 1.0}  # NMSE in percent: at most one point worse
    unit = "frames"
    preview_kind = "density"

    def count(self, sample: Sample) -> int:
        return int(len(sample.image))

    # -- model facts ---------------------------------------------------------------------------
    @property
    def upsample(self) -> int:
        return int(getattr(self.parser, "upsample", self.config.model.params.get("upsample", 8)))

    @cached_property
    def multiple(self) -> int:
        """Frame sides the network needs (frames are padded to it and the output cropped back)."""
        return int(getattr(self.parser.build_model(), "multiple", 1))

    def simulation(self):
        if self.config.simulation is None:
            raise ConfigError("the reconstruct task needs a 'simulation' section (pixel size at least)")
        return self.config.simulation

    def _settings(self):
        return self.config.deepstorm or DeepSTORMSection()

    # -- data ------------------------------------------------------------------------------------
    def samples(self) -> Iterator[Sample]:
        inf = self.config.inference
        if inf.input is not None:
            inputs = movie_inputs(inf.input)
            targets = _list_targets(inf.target) if inf.target else [None] * len(inputs)
            if len(targets) != len(inputs):
                raise InputError(f"inference: {len(inputs)} input stacks but {len(targets)} targets")
            for src, tgt in zip(inputs, targets):
                with assumed(MOVIE_READING):
                    stack = check_stack(open_frames(src), str(src))
                yield Sample(src.stem, stack, self._target(tgt, stack.shape[1:]) if tgt else None)
            return
        yield self._simulated("simulated_test", SEEDS["evaluation"])

    def validation_samples(self) -> Iterator[Sample]:
        """A simulated filament stack from the validation seeds (never the evaluation stack's)."""
        yield self._simulated("simulated_validation", SEEDS["validation"] + 7)

    def _simulated(self, name: str, seed: int) -> Sample:
        """A simulated filament stack (``simulation.test``) with its truth image."""
        sim = self.simulation().for_test()
        frames, truth = simulate_filament_stack(sim, self._settings().filaments, sim.test.frames, seed)
        return Sample(name, frames, truth_image(truth, frames.shape[1:], sim.pixel_size, self.upsample))

    def _target(self, path: Path, frame_shape: tuple[int, int]) -> np.ndarray:
        """Ground truth for a stack: true positions (SMLM CSV), rendered; or an image on the fine grid."""
        want = (frame_shape[0] * self.upsample, frame_shape[1] * self.upsample)
        if path.suffix.lower() == ".csv":
            return truth_image(read_localizations(path), frame_shape, self.simulation().pixel_size, self.upsample)
        image = read_image(path)
        if image.shape != want:
            raise InputError(f"{path}: ground-truth image is {image.shape}; it must be {want} (×{self.upsample} grid)")
        return image

    def example_batch(self, sample: Sample, batch_size: int) -> np.ndarray:
        h, w = self.config.inference.tile
        n = min(batch_size, len(sample.image))
        frames = np.asarray(sample.image[0:n], np.float32)[np.arange(batch_size) % n]
        frames = np.pad(frames, ((0, 0), (0, max(0, h - frames.shape[1])), (0, max(0, w - frames.shape[2]))), "edge")
        return np.ascontiguousarray(frames[:, None, :h, :w])

    # -- predict, score, write -----------------------------------------------------------------
    def predict(self, engine: BaseInfer, sample: Sample) -> np.ndarray:
        """The summed image of a stack in memory: the streaming job (:meth:`stream`) run here."""
        return run_in_memory(self.stream(sample), engine)

    def stream(self, sample: Sample):
        """Chunks of frames for the streaming runtime (:mod:`efficientbioai.tasks.reconstruct_job`)."""
        return ReconstructJob(self, sample.name, sample.image)

    def score(self, output: np.ndarray, reference: np.ndarray) -> dict[str, float]:
        return reconstruction_scores(output, reference, self._settings().metric_sigma_px)

    def write(self, output: np.ndarray, folder: Path, name: str) -> Path:
        tif, _ = save_rendering(output, folder / f"{name}_sr")
        return tif

    def preview_input(self, sample: Sample) -> np.ndarray:
        """The mean of the first frames, on the super-resolution grid."""
        mean = np.asarray(sample.image[: min(50, len(sample.image))], np.float32).mean(0)
        return np.kron(mean, np.ones((self.upsample, self.upsample), np.float32))

    def extras(self, outputs: list[np.ndarray], samples: list[Sample], folder: Path) -> dict:
        """Ground-truth renderings (TIFF + PNG) and the SR image's local maxima as ThunderSTORM CSV."""
        fine = self.simulation().pixel_size / self.upsample
        files: dict = {}
        for output, sample in zip(outputs, samples):
            table = local_maxima(output, fine)
            files[f"{sample.name}_maxima"] = str(write_thunderstorm(folder / f"{sample.name}_maxima.csv", table))
            if sample.target is not None:
                shown = blur(sample.target, self._settings().metric_sigma_px).astype(np.float32)
                _, png = save_rendering(shown, folder / f"{sample.name}_truth")
                files[f"{sample.name}_truth"] = str(png)
        return files


def _list_targets(spec: Path) -> list[Path]:
    """Ground-truth files: one file, or the CSV/TIFF/.npy files of a folder or glob, sorted."""
    path = Path(spec)
    if path.is_file():
        return [path]
    pattern = str(path / "*") if path.is_dir() else str(spec)
    files = sorted(Path(p) for p in glob.glob(pattern) if Path(p).suffix.lower() in (".csv", ".tif", ".tiff", ".npy"))
    if not files:
        raise InputError(f"no ground-truth files (.csv, .tif, .npy) found at {spec}")
    return files
