"""Issue 17's speed table: the tuned deployment within budget against torch fp32 eager, per model.

For each bundled model, ``efficientbioai tune`` builds its candidates (every engine and
precision, int8 with sensitive layers in float, and the pruning ratios asked for), times them
all on this machine round-robin (warm-up, median) and scores them on the validation split; the
table shows what it deployed, its speed-up over torch fp32 and over OpenVINO fp32 measured in
that one run, its achieved GFLOP/s against this machine's ceiling for its precision
(``efficientbioai machine``), and the budget metrics.

    .venv/bin/python bench/bench_tune.py [--models den2d den3d smlm3d deepstorm] [--prune-flops F ...]
        [--prune-ratios R ...] [--pruned] [--time 20m]

``--pruned`` starts from each model's ``configs/<model>_pruned.yaml``, whose own pruning (ratio or
FLOP target, fine-tuning recipe) becomes one more group.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from efficientbioai.evaluation.report import describe_machine  # noqa: E402
from efficientbioai.evaluation.roofline import ceiling_key, ceilings, verdict  # noqa: E402
from efficientbioai.evaluation.tune import parse_duration, tune  # noqa: E402

MODELS = {
    "den2d": "monai_unet_denoise2d.yaml",
    "den3d": "monai_unet_denoise3d.yaml",
    "smlm3d": "dilatedloc_astig3d.yaml",
    "deepstorm": "deepstorm.yaml",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--prune-ratios", type=float, nargs="*", default=[], help="pruning ratios to try (default none)")
    ap.add_argument("--pruned", action="store_true", help="start from configs/<model>_pruned.yaml (its own pruning)")
    ap.add_argument("--prune-flops", type=float, nargs="*", default=[], help="FLOP reductions to prune to, e.g. 2")
    ap.add_argument("--time", default=None, help="time budget per model, e.g. 20m")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench_tune")
    args = ap.parse_args()
    roof = ceilings()
    table = Table(title=f"tuned deployment vs torch fp32 — {describe_machine(roof['machine'])}")
    for h in ("model", "deployed", "× torch fp32", "× OV fp32", "GFLOP/s", "% of ceiling", "budget", "metric vs fp32"):
        table.add_column(h, justify="left" if h in ("model", "deployed", "budget") else "right")
    for name in args.models:
        exp = args.out / name
        seconds = parse_duration(args.time) if args.time else None
        config = ROOT / "configs" / (MODELS[name].replace(".yaml", "_pruned.yaml") if args.pruned else MODELS[name])
        record = tune(config, exp, seconds, tuple(args.prune_ratios), True, tuple(args.prune_flops))
        rows = {r["variant"]: r for r in record["candidates"]}
        chosen, ref = rows[record["chosen"]], record["candidates"][0]
        ms = chosen["latency"]["median_ms"]
        manifest = json.loads((exp / "manifest.json").read_text())
        flops = manifest["model"]["flops_per_tile"] * chosen["latency"]["batch_size"]
        if chosen["artefact_variant"].endswith(":pruned"):
            flops = manifest["pruning"]["after"]["flops_per_tile"] * chosen["latency"]["batch_size"]
        gflops = flops / ms / 1e6
        ceiling = roof["ceilings_gflops"].get(ceiling_key(chosen["precision"]), roof["ceilings_gflops"]["fp32"])
        ov = rows.get("openvino:fp32", chosen)["latency"]["median_ms"]
        metrics = "; ".join(
            f"{t['metric']} {t['value']:.4g} vs {t['fp32']:.4g}" for t in chosen.get("budget", {}).get("terms", [])
        )
        table.add_row(
            name, record["chosen"], f"{ref['latency']['median_ms'] / ms:.2f}×", f"{ov / ms:.2f}×",
            f"{gflops:.0f}", f"{100 * gflops / ceiling:.0f}%", ", ".join(record["budget"]), metrics or "reference",
        )  # fmt: skip
    Console(width=190).print(table)
    print(f"  {verdict(roof)}; latency per batch, tune's round-robin protocol (warm-up, median).")


if __name__ == "__main__":
    main()
