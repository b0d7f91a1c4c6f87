"""The camera experiment: a localizer trained on one camera, data from another.

The shipped 2D DilatedLoc (trained on the SMLM-challenge EMCCD) localizes one simulated test
stack recorded by two cameras with the same emitters: its training camera (matched), and an
sCMOS with another gain and offset — raw, converted with the true camera block, and converted
with the block ``efficientbioai camera`` estimates from the stack itself. Then the estimator's
accuracy on both cameras, with and without dark frames.

    .venv/bin/python bench/bench_camera.py [--frames 64]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from efficientbioai.evaluation.camera_experiment import localize_with_cameras  # noqa: E402
from efficientbioai.evaluation.report import describe_machine  # noqa: E402
from efficientbioai.manifest import machine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=64)
    args = ap.parse_args()
    rows, estimates = localize_with_cameras(ROOT / "configs" / "dilatedloc_gauss2d.yaml", args.frames)
    t = Table(title=f"Shipped 2D DilatedLoc, {args.frames} test frames, {describe_machine(machine())}")
    for h in ["data", "conversion", "Jaccard", "recall", "precision", "RMSE xy nm"]:
        t.add_column(h, justify="right")
    for r in rows:
        t.add_row(r["data"], r["conversion"], f"{r['jaccard']:.3f}", f"{r['recall']:.3f}", f"{r['precision']:.3f}",
                  f"{r['rmse_lateral']:.1f}")  # fmt: skip
    Console().print(t)
    e = Table(title="Camera estimated from a 200-frame movie it recorded (photon transfer)")
    for h in ["camera", "true ADU/e⁻", "estimated", "error", "true offset", "estimated offset", "dark frames"]:
        e.add_column(h, justify="right")
    for name, est, cam in estimates:
        true_g = (cam.em_gain or 1.0) / cam.e_per_adu
        if est is None:
            e.add_row(
                name, f"{true_g:.3f}", "refused: flat background, give --dark", "–", f"{cam.baseline:.0f}", "–", "no"
            )
            continue
        e.add_row(name, f"{true_g:.3f}", f"{est.adu_per_electron:.3f} ± {est.adu_per_electron_sd:.3f}",
                  f"{100 * (est.adu_per_electron / true_g - 1):+.1f} %", f"{cam.baseline:.0f}",
                  f"{est.offset:.1f} ± {est.offset_sd:.1f}", "yes" if est.from_dark else "no")  # fmt: skip
    Console().print(e)


if __name__ == "__main__":
    main()
