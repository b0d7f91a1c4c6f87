"""prune → fine-tune (cellpose's own train_seg) → int8 for a CPnet, in one compress run."""

import json

import pytest
import yaml

pytest.importorskip("cellpose")

from efficientbioai.api.infer import run_inference  # noqa: E402
from efficientbioai.cellpose.network import build_cpnet  # noqa: E402
from efficientbioai.compression.build_experiment import compress  # noqa: E402


def test_pruned_cpnet_chain(tmp_path):
    net = build_cpnet(nchan=2, nbase=(8, 16, 32, 64), diam_mean=17.0)
    net.save_model(str(tmp_path / "cp_model"))
    cfg = {
        "model": {
            "parser": "cellpose",
            "checkpoint": str(tmp_path / "cp_model"),
            "params": {"nbase": [8, 16, 32, 64], "diam_mean": 17.0},
        },
        "cellpose": {"train": {"images": 4, "test_images": 1, "image_shape": [96, 96], "bsize": 64}},
        "prune": {"enabled": True, "ratio": 0.5, "fine_tune": {"steps": 1, "batch_size": 4}},
        "data": {
            "calibration": {"num_samples": 2, "shape": [96, 96]},
            "evaluation": {"num_samples": 1, "shape": [96, 96]},
        },
        "inference": {"tile": [64, 64], "batch_size": 4},
        "report": {
            "compare": ["torch:fp32", "openvino:int8"],
            "latency": {"warmup": 1, "runs": 3},
            "energy": {"enabled": False},
        },
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    deploy = compress(path, tmp_path / "exp")
    manifest = json.loads((deploy.parent / "manifest.json").read_text())
    pruning = manifest["pruning"]
    assert pruning["after"]["parameters"] < 0.4 * pruning["before"]["parameters"]
    assert pruning["fine_tune"]["mode"].startswith("cellpose train_seg") and pruning["fine_tune"]["curve"]
    assert "net.output.2" in pruning["protected"]
    rows = {r["variant"]: r for r in run_inference(deploy)["variants"]}
    assert set(rows) == {"torch:fp32", "openvino:int8", "openvino:int8:pruned", "openvino:fp32:pruned"}  # + the floor
    assert "ap50" in rows["openvino:int8:pruned"]["vs_fp32"]
