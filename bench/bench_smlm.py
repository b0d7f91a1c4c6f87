"""Benchmark DilatedLoc localization: frames/s and accuracy per engine and precision.

Compresses the shipped astigmatic model, then in one run measures the engine latency of a
batch of frames, end-to-end frames/s on the simulated test stack (post-processing included),
and Jaccard / RMSE / efficiency against ground truth, for torch fp32 (eager), ONNX Runtime
int8 and OpenVINO fp32 / int8. Last, the DilatedLoc paper's CRLB test (isolated emitters of
constant brightness at 25 z positions) for torch fp32 and OpenVINO int8: RMSE vs CRLB per axis.

    .venv/bin/python bench/bench_smlm.py [--runs 50] [--frames 400] [--per-z 240]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench._common import fresh_experiment, interleaved_latency  # noqa: E402
from efficientbioai.config import load_config  # noqa: E402
from efficientbioai.evaluation.report import describe_machine  # noqa: E402
from efficientbioai.manifest import machine  # noqa: E402

VARIANTS = ["torch:fp32", "onnxruntime:int8", "openvino:fp32", "openvino:int8"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--per-z", type=int, default=240, help="emitters per z position in the precision test")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "dilatedloc_astig3d.yaml")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cfg = load_config(args.config)
    cfg.report.compare = VARIANTS
    cfg.report.latency.runs = args.runs
    cfg.report.energy.enabled = False
    cfg.simulation.test.frames = args.frames
    report, deploy = fresh_experiment(cfg, args.out, "bench_smlm")
    rows = {r["variant"]: r for r in report["variants"]}
    ref = rows["torch:fp32"]
    t = Table(title=f"DilatedLoc ({report['model']['parameters']:,} parameters), {describe_machine(machine())}")
    for h in [
        "variant",
        "engine ms/batch",
        "× torch",
        "frames/s end-to-end",
        "× torch",
        "Jaccard",
        "RMSE xy nm",
        "RMSE z nm",
        "Eff. 3D",
        "Jaccard vs fp32",
    ]:
        t.add_column(h, justify="right")
    for v in VARIANTS:
        r, g = rows[v], rows[v]["vs_ground_truth"]
        t.add_row(
            v,
            f"{r['latency']['median_ms']:.1f}",
            f"{ref['latency']['median_ms'] / r['latency']['median_ms']:.2f}",
            f"{r['units_per_s']:.1f}",
            f"{r['units_per_s'] / ref['units_per_s']:.2f}",
            f"{g['jaccard']:.4f}",
            f"{g['rmse_lateral']:.1f}",
            f"{g['rmse_axial']:.1f}",
            f"{g['efficiency_3d']:.1f}",
            f"{r['vs_fp32']['jaccard']:.4f}",
        )
    t.caption = (
        f"batch {ref['latency']['batch_size']} frames of {report['model']['tile'][2:]}, "
        f"threads {ref['engine']['threads']}; {ref['units']:g} test frames never used for training"
    )
    console = Console(width=160)
    console.print(t)
    names = ["torch:fp32", "openvino:fp32", "openvino:int8"]
    console.print(interleaved_latency(deploy, names, args.runs, ref["latency"]["batch_size"]))
    console.print(_precision(deploy, args.per_z))


def _precision(deploy: Path, per_z: int) -> Table:
    """The DilatedLoc paper's CRLB test (isolated emitters, constant photons and background,
    25 z positions) for torch fp32 and OpenVINO int8, with the per-z plot beside the experiment."""
    from efficientbioai.engines.factory import create_engine
    from efficientbioai.parsers.base import Sample, create_parser
    from efficientbioai.registry import TASKS
    from efficientbioai.smlm.plots import plot_rmse_vs_crlb
    from efficientbioai.smlm.precision import precision_test

    cfg = load_config(deploy)
    parser = create_parser(cfg)
    task = TASKS.get(parser.task_name)(cfg, parser)
    t = Table(title="single-emitter precision vs CRLB (per axis, nm; mean over z)")
    for h in ["variant", "recall", "RMSE xy", "CRLB xy", "ratio", "RMSE z", "CRLB z", "ratio"]:
        t.add_column(h, justify="right")
    for name in ["torch:fp32", "openvino:int8"]:
        engine = create_engine(name, cfg, parser)

        def localize(stack: np.ndarray, engine=engine) -> np.ndarray:
            return task.predict(engine, Sample("precision", stack, None))

        rows, s = precision_test(localize, cfg.simulation, per_z=per_z)
        z = [r.z for r in rows]
        plot_rmse_vs_crlb(z, [r.rmse_lateral for r in rows], [r.rmse_axial for r in rows],
                          [r.crlb_lateral for r in rows], [r.crlb_axial for r in rows],
                          deploy.parent / f"precision_vs_crlb_{name.replace(':', '_')}.png")  # fmt: skip
        t.add_row(name, f"{s['recall']:.4f}", f"{s['rmse_lateral']:.2f}", f"{s['crlb_lateral']:.2f}",
                  f"{s['ratio_lateral']:.2f}", f"{s['rmse_axial']:.1f}", f"{s['crlb_axial']:.1f}",
                  f"{s['ratio_axial']:.2f}")  # fmt: skip
    test = cfg.simulation.for_test()
    t.caption = (
        f"{len(rows)} z positions × {per_z} isolated emitters, {np.mean(test.photons):g} photons, "
        f"background {np.mean(test.background):g} photons/px (own seeds); "
        "CRLB with the camera's QE and EMCCD excess noise"
    )
    return t


if __name__ == "__main__":
    main()
