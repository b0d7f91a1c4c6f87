"""Shared by the benches: compress and inference in fresh processes; round-robin latency.

Quantization leaves ONNX Runtime / OpenVINO / NNCF thread pools alive in its process, and
torch's OpenMP threads would compete with them in the fp32 reference's timing; a fresh
inference process (torch first, as ``inference.py`` always runs it) measures every engine
under the same conditions. The denoiser, pruning and Cellpose benches compressed in-process
before this module existed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rich.table import Table

from efficientbioai.config import Config, dump_config, load_config

ROOT = Path(__file__).resolve().parent.parent


def fresh_experiment(cfg: Config, out: Path, name: str) -> tuple[dict, Path]:
    """Write ``cfg`` to ``out/name.yaml``, compress it into ``out/name`` and run inference there,
    each in a new Python process; returns the report and the path of ``deploy.yaml``."""
    staged = out / f"{name}.yaml"
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_text(dump_config(cfg))
    exp = out / name
    quiet = {"stdout": subprocess.DEVNULL, "check": True}
    subprocess.run([sys.executable, str(ROOT / "efficientbioai" / "compress.py"), "--config", str(staged),
                    "--exp_path", str(exp), "--overwrite"], **quiet)  # fmt: skip
    subprocess.run([sys.executable, str(ROOT / "efficientbioai" / "inference.py"), "--config",
                    str(exp / "deploy.yaml")], **quiet)  # fmt: skip
    return json.loads((exp / "report.json").read_text()), exp / "deploy.yaml"


def interleaved_latency(deploy: Path, names: list[str], runs: int, batch_size: int) -> Table:
    """Latency of ``names`` (the first is the reference) timed round-robin, call after call.

    On a shared VM the speed changes within seconds (OpenVINO calls here are bimodal, 1.5–2×
    apart for the same IR); timing the engines in turn gives each the same conditions, so these
    ratios are the ones to quote. (ONNX Runtime's workers used to spin after each call and slow
    the engine timed next; ``ORTModule`` now turns spinning off.)
    """
    from efficientbioai.engines.factory import create_engine
    from efficientbioai.evaluation.measure import round_robin_latency
    from efficientbioai.parsers.base import create_parser
    from efficientbioai.registry import TASKS

    cfg = load_config(deploy)
    parser = create_parser(cfg)
    task = TASKS.get(parser.task_name)(cfg, parser)
    x = task.example_batch(next(iter(task.samples())), batch_size)
    engines = {n: create_engine(n, cfg, parser) for n in names}
    lat = round_robin_latency(engines, x, warmup=5, runs=runs)
    med = {n: lat[n].median_ms / 1000 for n in names}
    ref = names[0]
    t = Table(title="interleaved latency (engines timed in turn, same load)")
    for h in ["variant", "ms/frame", "p90", f"× {ref}", "frames/s"]:
        t.add_column(h, justify="right")
    for n in names:
        t.add_row(
            n,
            f"{1000 * med[n] / batch_size:.2f}",
            f"{lat[n].p90_ms / batch_size:.2f}",
            f"{med[ref] / med[n]:.2f}",
            f"{batch_size / med[n]:.1f}",
        )
    t.caption = f"batch {batch_size} frames, 5 warm-up + {runs} rounds, threads {engines[ref].threads}"
    return t
