"""Dense, filament-bound SMLM: the shipped 2D DilatedLoc where emitters crowd along filaments.

Emitters sit on microtubule-like filaments (``deepstorm/filaments.py``: 8 worm-like curves in a
64×64 field at 100 nm), so the local density along a filament is far above the field average.
For field densities of 2, 5 and 8 emitters/µm², a held-apart stack (seeds never used for
training or calibration) is localized by torch fp32 and OpenVINO int8 and scored like the SMLM
challenge (recall, precision, Jaccard, lateral RMSE). Issue 15's target at 5/µm²: Jaccard ≥ 0.6
with precision ≥ 0.9 and lateral RMSE ≤ 35 nm.

    .venv/bin/python bench/bench_dense_smlm.py [--frames 100] [--exp out/dense_exp]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from efficientbioai.compression.build_experiment import compress  # noqa: E402
from efficientbioai.config import load_config  # noqa: E402
from efficientbioai.deepstorm.filaments import simulate_filament_stack  # noqa: E402
from efficientbioai.engines.factory import create_engine  # noqa: E402
from efficientbioai.evaluation.report import describe_machine  # noqa: E402
from efficientbioai.manifest import machine  # noqa: E402
from efficientbioai.parsers.base import Sample, create_parser  # noqa: E402
from efficientbioai.registry import TASKS  # noqa: E402
from efficientbioai.smlm.filaments import FilamentSection  # noqa: E402

DENSITIES = (2.0, 5.0, 8.0)
SEED = 90_000_000  # apart from every training, validation, calibration and evaluation range


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--exp", default=str(ROOT / "out" / "dense_exp"))
    ap.add_argument("--config", default=str(ROOT / "configs" / "dilatedloc_gauss2d.yaml"))
    ap.add_argument("--split", type=float, help="inference.localization.split for this run (default: the config's)")
    args = ap.parse_args()
    exp = Path(args.exp)
    if not (exp / "deploy.yaml").is_file():
        compress(args.config, exp, overwrite=True)
    config = load_config(exp / "deploy.yaml")
    if args.split is not None:
        config.inference.localization.split = args.split
    parser = create_parser(config)
    task = TASKS.get(parser.task_name)(config, parser)
    engines = {v: create_engine(v, config, parser) for v in ("torch:fp32", "openvino:int8")}
    t = Table(
        title=f"2D DilatedLoc on filament-bound emitters, {args.frames} frames each, split "
        f"{config.inference.localization.split:g}, {describe_machine(machine())}"
    )
    for h in ("emitters/µm²", "variant", "recall", "precision", "Jaccard", "RMSE xy nm"):
        t.add_column(h, justify="right")
    for i, density in enumerate(DENSITIES):
        sim = config.simulation.for_test().model_copy(update={"density_per_um2": [density, density]})
        frames, truth = simulate_filament_stack(sim, FilamentSection(), args.frames, SEED + i)
        for variant, engine in engines.items():
            s = task.score(task.predict(engine, Sample(f"dense_{density:g}", frames)), truth)
            t.add_row(f"{density:g}", variant, f"{s['recall']:.3f}", f"{s['precision']:.3f}", f"{s['jaccard']:.3f}",
                      f"{s['rmse_lateral']:.1f}")  # fmt: skip
    Console(width=140).print(t)


if __name__ == "__main__":
    main()
