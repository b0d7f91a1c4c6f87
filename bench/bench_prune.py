"""Benchmark pruning + int8 on the bundled 2D and 3D denoisers (OpenVINO, this machine).

For each denoiser, one compress run builds fp32, int8 and pruned (50%, L1, fine-tuned) + int8;
one inference run measures them side by side: latency vs torch fp32 and vs OpenVINO fp32,
pruned+int8 vs int8 alone, parameter count, and Pearson against the clean ground truth on
synthetic images never used for training, fine-tuning or calibration.

    .venv/bin/python bench/bench_prune.py [--runs 30] [--steps 400] [--only 2d|3d] [--threads N]

Every timed engine uses ``--threads`` (default: all cores), whatever torch's own default is; so
``OMP_NUM_THREADS=1`` can keep the fine-tuning on one core while another job runs, without
changing what is timed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench._common import fresh_experiment  # noqa: E402
from efficientbioai.config import load_config  # noqa: E402
from efficientbioai.evaluation.report import describe_machine  # noqa: E402
from efficientbioai.manifest import machine  # noqa: E402

VARIANTS = ["torch:fp32", "openvino:fp32", "openvino:int8", "openvino:fp32:pruned", "openvino:int8:pruned"]


def bench(name: str, config: Path, out: Path, runs: int, steps: int | None, threads: int) -> Table:
    cfg = load_config(config)
    cfg.engine.threads = threads
    cfg.report.compare = VARIANTS
    cfg.report.latency.runs = runs
    cfg.report.energy.enabled = False
    if steps is not None:
        cfg.prune.fine_tune.steps = steps
    report = fresh_experiment(cfg, out, f"bench_prune_{name}")[0]
    rows = {r["variant"]: r for r in report["variants"]}
    ms = {v: rows[v]["latency"]["median_ms"] for v in VARIANTS}
    fp32 = rows["torch:fp32"]["vs_ground_truth"]["pearson"]
    where = describe_machine(machine())
    t = Table(title=f"{name} denoiser: prune {cfg.prune.ratio:.0%} {cfg.prune.importance} + int8, {where}")
    for h in ["variant", "ms/batch", "× torch", "× OV fp32", "× OV int8", "parameters", "Pearson", "Δ vs fp32"]:
        t.add_column(h, justify="right")
    for v in VARIANTS:
        r = rows[v]
        pearson = r["vs_ground_truth"]["pearson"]
        t.add_row(
            v,
            f"{ms[v]:.1f}",
            f"{ms['torch:fp32'] / ms[v]:.2f}",
            f"{ms['openvino:fp32'] / ms[v]:.2f}",
            f"{ms['openvino:int8'] / ms[v]:.2f}",
            f"{r['parameters']:,}",
            f"{pearson:.4f}",
            f"{pearson - fp32:+.4f}",
        )
    ft = report["pruning"]["fine_tune"]
    lat = rows["torch:fp32"]["latency"]
    t.caption = (
        f"batch {lat['batch_size']} tiles of {report['model']['tile'][2:]}, {runs} timed runs (median), "
        f"threads {rows['torch:fp32']['engine']['threads']}; fine-tuning: {ft['mode']}, {ft.get('steps')} steps; "
        f"Pearson on {rows['torch:fp32']['units']:g} evaluation images"
    )
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--steps", type=int, help="fine-tuning steps (default: the config's)")
    ap.add_argument("--only", choices=["2d", "3d"])
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads of every timed engine")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    console = Console(width=160)
    for name in ["2d", "3d"]:
        if args.only in (None, name):
            config = ROOT / "configs" / f"monai_unet_denoise{name}_pruned.yaml"
            console.print(bench(name.upper(), config, args.out, args.runs, args.steps, args.threads))


if __name__ == "__main__":
    main()
