"""Semantic segmentation task: masks out, Dice against truth and against the fp32 masks."""

import numpy as np
import tifffile

from efficientbioai.api.infer import run_inference
from efficientbioai.compression.build_experiment import compress
from tests.helpers import TINY, write_config


def test_segment_task_end_to_end(tmp_path, tiny_checkpoint):
    cfg = {
        **TINY,
        "model": {**TINY["model"], "checkpoint": str(tiny_checkpoint)},
        "inference": {**TINY["inference"], "task": "segment", "threshold": 0.6},
        "report": {**TINY["report"], "compare": ["torch:fp32", "openvino:int8"]},
    }
    deploy = compress(write_config(tmp_path, cfg), tmp_path / "exp")
    report = run_inference(deploy)
    rows = {r["variant"]: r for r in report["variants"]}
    assert report["primary_metric"] == "dice"
    assert rows["torch:fp32"]["vs_fp32"]["dice"] == 1.0
    assert rows["openvino:int8"]["vs_fp32"]["dice"] > 0.9
    assert 0.2 < rows["torch:fp32"]["vs_ground_truth"]["dice"] <= 1.0
    mask = tifffile.imread(rows["openvino:int8"]["outputs"][0])
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1} and mask.shape == (96, 80)
