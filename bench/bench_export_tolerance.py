"""The export tolerance each bundled model derives from its own float32 rounding.

For every non-pruned config in ``configs/``: load the shipped model, export it as ``compress``
does, and verify it on two of its calibration inputs (and their concatenation): the float32
rounding (torch float32 vs float64), the derived tolerance (× ``export.verify_safety``), the
ONNX Runtime error, and whether the old fixed limit 1e-5 would have passed.

    .venv/bin/python bench/bench_export_tolerance.py
"""

from __future__ import annotations

import itertools
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from efficientbioai.compression.export import export_onnx, verify_onnx  # noqa: E402
from efficientbioai.config import load_config  # noqa: E402
from efficientbioai.evaluation.report import describe_machine  # noqa: E402
from efficientbioai.manifest import machine  # noqa: E402
from efficientbioai.parsers.base import create_parser  # noqa: E402


def measure(config: Path) -> tuple[float, float, float]:
    cfg = load_config(config)
    parser = create_parser(cfg)
    model = parser.export_graph(parser.load_model())
    calib = [torch.from_numpy(x) for x in itertools.islice(parser.calibration_inputs(), 2)]
    checks = calib + ([torch.cat(calib)] if len(calib) == 2 else [])
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(model, parser.example_input(), Path(tmp) / "m.onnx", parser.input_names,
                           parser.output_names, parser.dynamic_axes(), cfg.export.opset)  # fmt: skip
        v = verify_onnx(model, path, checks, None, cfg.export.verify_safety)
    return v.noise, v.tolerance, v.error


def main() -> None:
    t = Table(title=f"ONNX export verification per bundled model, {describe_machine(machine())}")
    for h in ["config", "float32 rounding", "tolerance", "ONNX error", "error ÷ rounding", "old 1e-5"]:
        t.add_column(h, justify="right")
    for config in sorted((ROOT / "configs").glob("*.yaml")):
        if "pruned" in config.stem:
            continue  # pruning + fine-tuning first; compress records these in manifest.json
        noise, tol, err = measure(config)
        t.add_row(config.stem, f"{noise:.2e}", f"{tol:.2e}", f"{err:.2e}", f"{err / noise:.2f}",
                  "pass" if err <= 1e-5 else "FAIL")  # fmt: skip
    Console().print(t)


if __name__ == "__main__":
    main()
