"""Transposed convolutions exported as sub-pixel convolutions (``export.subpixel``) against as they are.

Each bundled MONAI denoiser is compressed twice, with ``export.subpixel`` on and off (fresh
processes); then torch fp32 and the OpenVINO fp32 and int8 IRs of both are timed round-robin in
one process (warm-up, median), and each variant's validation Pearson is read from its
``selection.json``. CPU and ISA are printed with the table.

    .venv/bin/python bench/bench_subpixel.py [--models den2d den3d] [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from efficientbioai.config import dump_config, load_config  # noqa: E402
from efficientbioai.engines.factory import create_engine  # noqa: E402
from efficientbioai.evaluation.measure import round_robin_latency  # noqa: E402
from efficientbioai.evaluation.report import describe_machine  # noqa: E402
from efficientbioai.manifest import machine  # noqa: E402
from efficientbioai.parsers.base import create_parser  # noqa: E402
from efficientbioai.registry import TASKS  # noqa: E402

MODELS = {"den2d": "monai_unet_denoise2d.yaml", "den3d": "monai_unet_denoise3d.yaml"}
VARIANTS = ["openvino:fp32", "openvino:int8"]


def _compress(name: str, subpixel: bool, out: Path) -> Path:
    cfg = load_config(ROOT / "configs" / MODELS[name])
    cfg.export.subpixel = subpixel
    cfg.report.compare = ["torch:fp32", *VARIANTS]
    staged = out / f"{name}-{'subpixel' if subpixel else 'transposed'}"
    staged.parent.mkdir(parents=True, exist_ok=True)
    (yaml := staged.with_suffix(".yaml")).write_text(dump_config(cfg))
    subprocess.run([sys.executable, str(ROOT / "efficientbioai" / "compress.py"), "--config", str(yaml),
                    "--exp_path", str(staged), "--overwrite"], stdout=subprocess.DEVNULL, check=True)  # fmt: skip
    return staged


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench_subpixel")
    args = ap.parse_args()
    table = Table(title=f"export.subpixel on and off — {describe_machine(machine())}")
    for h in ("model", "variant", "transposed ms", "sub-pixel ms", "× (transposed ÷ sub-pixel)", "Pearson (t / s)"):
        table.add_column(h, justify="left" if h in ("model", "variant") else "right")
    for name in args.models:
        exps = {s: _compress(name, s, args.out) for s in (False, True)}
        engines, scores = {}, {}
        for sub, exp in exps.items():
            cfg = load_config(exp / "deploy.yaml")
            parser = create_parser(cfg)
            rows = json.loads((exp / "selection.json").read_text())["candidates"]
            scores |= {(r["variant"], sub): r["scores"]["pearson"] for r in rows}
            for v in ([] if sub else ["torch:fp32"]) + VARIANTS:
                engines[(v, sub)] = create_engine(v, cfg, parser)
        task = TASKS.get(parser.task_name)(cfg, parser)
        x = task.example_batch(next(iter(task.samples())), cfg.inference.batch_size)
        lat = round_robin_latency({f"{v} {s}": e for (v, s), e in engines.items()}, x, warmup=5, runs=args.runs)
        ms = {k: lat[f"{k[0]} {k[1]}"].median_ms for k in engines}
        torch_ms = ms[("torch:fp32", False)]
        table.add_row(name, "torch:fp32", f"{torch_ms:.1f}", "", "", f"{scores[('torch:fp32', False)]:.4f}")
        for v in VARIANTS:
            t, s = ms[(v, False)], ms[(v, True)]
            table.add_row(
                name, v, f"{t:.1f} ({torch_ms / t:.2f}× torch)", f"{s:.1f} ({torch_ms / s:.2f}× torch)",
                f"{t / s:.2f}×", f"{scores[(v, False)]:.4f} / {scores[(v, True)]:.4f}",
            )  # fmt: skip
        for e in engines.values():
            e.release()
    Console(width=170).print(table)
    print("  latency per batch (inference.batch_size tiles), engines timed in turn; Pearson on the validation split.")


if __name__ == "__main__":
    main()
