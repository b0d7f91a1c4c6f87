"""ONNX Runtime int8 with and without accuracy control, on real-like images (bench/real_like.py).

The bundled 2D denoiser is compressed four times: int8 calibrated on the bundled synthetic
images or on three of the real-like images, each without and with
``quantize.onnxruntime.max_accuracy_drop`` (validated on four other real-like images). All
are scored on six further real-like images, never used for calibration or validation:
Pearson against the clean image, as the issue measured. OpenVINO int8 (NNCF's accuracy
control, the config's ``max_accuracy_drop``, the same validation images) is shown beside it.

    .venv/bin/python bench/bench_ort_accuracy_control.py [--max-drop 0.005]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench._common import fresh_experiment  # noqa: E402
from bench.real_like import write_splits  # noqa: E402
from efficientbioai.config import load_config  # noqa: E402
from efficientbioai.evaluation.report import describe_machine  # noqa: E402
from efficientbioai.manifest import machine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-drop", type=float, default=0.005)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_ort_ac_"))
    splits = write_splits(out / "data")
    t = Table(title=f"2D denoiser, ONNX Runtime int8 on real-like images, {describe_machine(machine())}")
    for h in ["calibration", "accuracy control", "layers in float", "val fp32", "val int8", "eval fp32",
              "eval int8", "eval drop", "eval OV int8"]:  # fmt: skip
        t.add_column(h, justify="right")
    for calib in ("synthetic", "files"):
        for control in (False, True):
            cfg = load_config(ROOT / "configs" / "monai_unet_denoise2d.yaml")
            if calib == "files":
                cfg.data.calibration = cfg.data.calibration.model_copy(
                    update={"source": "files", "inputs": splits["calibration"][0]}
                )
            raw, gt = splits["validation"]
            cfg.data.validation = cfg.data.validation.model_copy(
                update={"source": "files", "inputs": raw, "targets": gt, "num_samples": 4}
            )
            cfg.inference.input, cfg.inference.target = splits["evaluation"]
            cfg.quantize.onnxruntime.max_accuracy_drop = args.max_drop if control else None
            cfg.engine.name, cfg.engine.precision = "onnxruntime", "int8"
            cfg.report.compare = ["torch:fp32", "onnxruntime:int8", "openvino:int8"]  # OV: NNCF control
            cfg.report.latency.warmup, cfg.report.latency.runs = 1, 3
            cfg.report.energy.enabled = False
            name = f"{calib}_{'control' if control else 'plain'}"
            try:
                report, deploy = fresh_experiment(cfg, out, name)
            except Exception as exc:  # a deployed variant outside the budget is refused at compress
                t.add_row(calib, "on" if control else "off", "–", "–", "–", "–", "–", f"refused: {exc}", "–")
                continue
            rows = {r["variant"]: r for r in report["variants"]}
            fp32 = rows["torch:fp32"]["vs_ground_truth"]["pearson"]
            int8 = rows["onnxruntime:int8"]["vs_ground_truth"]["pearson"]
            record = deploy.parent / "model_int8_accuracy.json"
            acc = json.loads(record.read_text()) if record.is_file() else None
            t.add_row(
                calib,
                f"on (−{args.max_drop:g})" if control else "off",
                str(len(acc["kept_float"])) if acc else "0",
                f"{acc['metric_fp32']:.4f}" if acc else "–",
                f"{acc['metric_int8']:.4f}" if acc else "–",
                f"{fp32:.4f}",
                f"{int8:.4f}",
                f"{fp32 - int8:+.4f}",
                f"{rows['openvino:int8']['vs_ground_truth']['pearson']:.4f}",
            )
    Console().print(t)
    print(f"experiments in {out}")


if __name__ == "__main__":
    main()
