"""Localization precision with *your* camera: simulated frames it would record, localized, against the CRLB.

``efficientbioai crlb --config exp/deploy.yaml [--acquisition camera.yaml]`` simulates the
test sample of the model's ``simulation`` section as recorded by the camera of the
``acquisition`` block (offset, gain, EM gain, QE, read noise), localizes it the way ``infer``
does (converted into the training camera's units, then the network), and plots the RMSE over z
against the Cramér–Rao bound of that camera. A localizer at its bound shows it is not the
camera conversion that limits it.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import yaml

from efficientbioai.config import Config
from efficientbioai.engines.factory import create_engine
from efficientbioai.errors import ConfigError
from efficientbioai.parsers.base import Sample, create_parser
from efficientbioai.registry import TASKS
from efficientbioai.smlm.acquisition import AcquisitionSection
from efficientbioai.smlm.crlb import simulation_crlb
from efficientbioai.smlm.localization_metrics import rmse_by_z
from efficientbioai.smlm.plots import plot_rmse_vs_crlb
from efficientbioai.smlm.settings import CameraSection
from efficientbioai.smlm.simulated_training import SEEDS, simulate_batch, truth_table


def crlb_with_camera(
    config: Config, folder: Path, variant: str = "torch:fp32", acquisition: Path | None = None, frames: int = 200
) -> dict:
    """Scores, RMSE vs CRLB over z and the plot's path, for frames simulated with the acquisition camera."""
    config = config.model_copy(deep=True)
    if acquisition is not None:
        block = yaml.safe_load(Path(acquisition).read_text()) or {}
        config.acquisition = AcquisitionSection(**block.get("acquisition", block))
    if config.acquisition is None or config.simulation is None:
        raise ConfigError(
            "this needs the model's simulation section and your camera's acquisition block: "
            "run `efficientbioai camera --input movie.tif --output camera.yaml` and pass --acquisition camera.yaml"
        )
    camera = config.acquisition.camera()
    sim = config.simulation.for_test().model_copy(update={"camera": CameraSection(**asdict(camera))})
    recorded, truth, mask = simulate_batch(sim, frames, SEEDS["precision"] + 7)
    reference = truth_table(truth, mask, sim.pixel_size)
    parser = create_parser(config)
    task = TASKS.get(parser.task_name)(config, parser)
    output = task.predict(create_engine(variant, config, parser), Sample("your_camera", recorded[:, 0]))
    scores = task.score(output, reference)
    lo, hi = sim.z_range_nm if sim.z_range_nm[1] > sim.z_range_nm[0] else (-1.0, 1.0)
    z, lateral, axial = rmse_by_z(output, reference, np.linspace(lo, hi, 8))
    bound = simulation_crlb(sim, z, float(np.mean(sim.photons)), float(np.mean(sim.background)))
    plot = plot_rmse_vs_crlb(z, lateral, axial, bound[:, 0], bound[:, 2], Path(folder) / "your_camera_rmse_vs_crlb.png")
    per_axis = scores["rmse_lateral"] / np.sqrt(2)
    return {
        **scores,
        "variant": variant,
        "frames": frames,
        "camera": asdict(camera),
        "crlb_lateral_nm": float(np.nanmean(bound[:, 0])),
        "rmse_per_axis_over_crlb": float(per_axis / np.nanmean(bound[:, 0])),
        "plot": str(plot),
    }
