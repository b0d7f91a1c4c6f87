"""Test helpers: the tiny model config and a YAML writer."""

from __future__ import annotations

from pathlib import Path

import yaml

TINY = {
    "model": {
        "parser": "monai_unet",
        "params": {
            "net": "UNet",
            "spatial_dims": 2,
            "channels": [8, 16, 32],
            "strides": [2, 2],
            "num_res_units": 1,
            "norm": "batch",
            "act": "relu",
        },
    },
    "data": {"calibration": {"num_samples": 4, "shape": [64, 64]}, "evaluation": {"num_samples": 2, "shape": [96, 80]}},
    "inference": {"tile": [64, 64], "batch_size": 2},
    "report": {
        "compare": ["torch:fp32", "onnxruntime:fp32", "onnxruntime:int8", "openvino:fp32", "openvino:int8"],
        "latency": {"warmup": 1, "runs": 3},
        "energy": {"enabled": False},
    },
}


def write_config(folder: Path, data: dict, name: str = "config.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
