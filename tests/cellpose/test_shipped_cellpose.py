"""The shipped Cellpose nuclei model: AP on generated images (own seeds, never trained or
calibrated on), fp32 and int8 on OpenVINO and ONNX Runtime."""

from pathlib import Path

import pytest

pytest.importorskip("cellpose")

from efficientbioai.api.infer import run_inference  # noqa: E402
from efficientbioai.compression.build_experiment import compress  # noqa: E402
from efficientbioai.config import dump_config, load_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "cellpose_nuclei.yaml"
INT8 = ["openvino:int8", "onnxruntime:int8"]


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    cfg = load_config(CONFIG)
    if not Path(cfg.model.checkpoint).is_file():
        pytest.skip("shipped checkpoint missing: run efficientbioai train --config configs/cellpose_nuclei.yaml")
    cfg.report.compare = ["torch:fp32", *INT8]
    cfg.report.latency.runs = 3
    cfg.report.latency.warmup = 1
    cfg.report.energy.enabled = False
    cfg.data.evaluation.num_samples = 4
    folder = tmp_path_factory.mktemp("shipped_cellpose")
    path = folder / "cfg.yaml"
    path.write_text(dump_config(cfg))
    report = run_inference(compress(path, folder / "exp"))
    return {r["variant"]: r for r in report["variants"]}


def test_fp32_segments_generated_nuclei(rows):
    assert rows["torch:fp32"]["vs_ground_truth"]["ap50"] >= 0.65  # measured 0.71 on 8 images of 384²


@pytest.mark.parametrize("variant", INT8)
def test_int8_matches_fp32(rows, variant):
    fp32 = rows["torch:fp32"]["vs_ground_truth"]["ap50"]
    int8 = rows[variant]
    assert abs(int8["vs_ground_truth"]["ap50"] - fp32) <= 0.02
    assert int8["vs_fp32"]["ap50"] >= 0.95
    # masks are written as label TIFFs for the deployed variant
    if variant == "openvino:int8":
        assert int8["outputs"] and all(p.endswith("_masks.tif") for p in int8["outputs"])
