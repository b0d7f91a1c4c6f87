"""The tutorial's custom model compresses and runs each of the three ways it shows."""

import pytest

from tutorial.custom_model import main


@pytest.mark.parametrize("way", ["python", "yaml", "parser"])
def test_custom_model_tutorial(tmp_path, way):
    report = main(str(tmp_path / "tut"), way=way, runs=3, energy=False)
    rows = {r["variant"]: r for r in report["variants"]}
    assert set(rows) == {"torch:fp32", "onnxruntime:int8", "openvino:fp32", "openvino:int8"}
    assert rows["openvino:int8"]["vs_fp32"]["pearson"] > 0.98
    assert rows["torch:fp32"]["vs_ground_truth"]["pearson"] > 0.5
    assert (tmp_path / "tut" / f"exp_{way}" / "predictions").is_dir()
