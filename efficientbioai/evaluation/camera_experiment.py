"""One stack, two cameras: how much a camera mismatch costs a localizer, and what conversion recovers.

Used by ``bench/bench_camera.py`` and the tests: the same simulated emitters recorded by the
model's training camera and by :data:`OTHER_SCMOS`, localized matched, raw and converted (with
the true camera block and with the one estimated from the stack).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from efficientbioai.config import load_config
from efficientbioai.engines.torch_engine import TorchModule
from efficientbioai.errors import InputError
from efficientbioai.parsers.base import Sample, create_parser
from efficientbioai.registry import TASKS
from efficientbioai.smlm.acquisition import AcquisitionSection
from efficientbioai.smlm.camera import EMCCD, Camera
from efficientbioai.smlm.camera_estimate import CameraEstimate, estimate_camera
from efficientbioai.smlm.settings import CameraSection
from efficientbioai.smlm.simulated_training import simulate_batch, simulate_blinking_stack, truth_table

#: An sCMOS unlike the training EMCCD: 4 ADU per electron, offset 400, QE 0.8.
OTHER_SCMOS = Camera(qe=0.8, em_gain=None, e_per_adu=0.25, baseline=400.0, read_sigma=1.6, spurious=0.0)


def localize_with_cameras(config_path: str | Path, frames: int = 64, seed: int = 20_260_101):
    """Rows of {data, conversion, jaccard, recall, precision, rmse_lateral} and the estimates."""
    config = load_config(config_path)
    sim = config.simulation.for_test()
    training = sim.camera.build()
    recorded, truth, mask = simulate_batch(sim, frames, seed, cameras=[training, OTHER_SCMOS])
    reference = truth_table(truth, mask, sim.pixel_size)
    stack_a, stack_b = recorded[0][:, 0], recorded[1][:, 0]
    parser = create_parser(config)
    engine = TorchModule(parser.load_model())
    estimates = camera_estimates(sim, seed)
    estimated = next(e for name, e, _ in estimates if name == "sCMOS" and e is not None and e.from_dark)
    true_block = {"offset": OTHER_SCMOS.baseline, "e_per_adu": OTHER_SCMOS.e_per_adu, "qe": OTHER_SCMOS.qe}
    runs = [
        ("training camera", "none (matched)", stack_a, None),
        ("other sCMOS", "none", stack_b, None),
        ("other sCMOS", "true camera block", stack_b, true_block),
        ("other sCMOS", "estimated block", stack_b, estimated.acquisition(None, OTHER_SCMOS.qe)),
    ]
    rows = []
    for data, conversion, stack, block in runs:
        cfg = config.model_copy(deep=True)
        cfg.acquisition = AcquisitionSection(**block) if block else None
        task = TASKS.get(parser.task_name)(cfg, parser)
        scores = task.score(task.predict(engine, Sample(data, stack)), reference)
        rows.append({"data": data, "conversion": conversion, **scores})
    return rows, estimates


def camera_estimates(sim, seed: int, frames: int = 200) -> list[tuple[str, CameraEstimate | None, Camera]]:
    """Each camera estimated from a movie it recorded (blinking emitters on a flat background),
    without and with 20 dark frames; None where the estimator refuses (flat background, no dark)."""
    rng = np.random.default_rng(seed + 1)
    out: list[tuple[str, CameraEstimate | None, Camera]] = []
    for name, cam, emccd in (("EMCCD", EMCCD, True), ("sCMOS", OTHER_SCMOS, False)):
        movie_sim = sim.model_copy(update={"camera": CameraSection(**asdict(cam))})
        movie, _ = simulate_blinking_stack(movie_sim, frames, seed + 2)
        dark = cam.forward(np.zeros((20, *movie.shape[1:])), rng)
        try:
            out.append((name, estimate_camera(movie, emccd=emccd), cam))
        except InputError:
            out.append((name, None, cam))
        out.append((name, estimate_camera(movie, dark=dark, emccd=emccd), cam))
    return out
