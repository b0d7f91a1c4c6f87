"""prune → fine-tune → int8 in one compress run; the report puts fp32, int8 and pruned+int8 side by side."""

import copy
import json

import numpy as np
import pytest

from efficientbioai.api.infer import run_inference
from efficientbioai.compression.build_experiment import compress
from efficientbioai.config import load_config
from tests.helpers import TINY, write_config


@pytest.fixture(scope="module")
def pruned_report(tmp_path_factory, tiny_checkpoint):
    folder = tmp_path_factory.mktemp("pruned_exp")
    data = copy.deepcopy(TINY)
    data["model"]["checkpoint"] = str(tiny_checkpoint)
    data["prune"] = {
        "enabled": True,
        "importance": "l1",
        "ratio": 0.5,
        "fine_tune": {"steps": 30, "eval_every": 10, "batch_size": 2, "lr": 1e-3},
    }
    data["report"]["compare"] = ["torch:fp32", "openvino:int8", "torch:fp32:pruned", "onnxruntime:int8:pruned"]
    deploy = compress(write_config(folder, data), folder / "exp")
    return deploy, run_inference(deploy)


def test_pruned_artefacts_are_smaller(pruned_report):
    deploy, report = pruned_report
    manifest = json.loads((deploy.parent / "manifest.json").read_text())
    pruning = manifest["pruning"]
    assert pruning["after"]["parameters"] < 0.5 * pruning["before"]["parameters"]
    assert pruning["after"]["flops_per_tile"] < 0.5 * pruning["before"]["flops_per_tile"]
    variants = manifest["variants"]
    assert variants["openvino:int8:pruned"]["bytes"] < variants["openvino:int8"]["bytes"]
    assert (deploy.parent / "pruned" / "model.onnx").stat().st_size < (deploy.parent / "model.onnx").stat().st_size
    assert variants["torch:fp32:pruned"]["parameters"] == pruning["after"]["parameters"]


def test_fine_tuning_curve_recorded(pruned_report):
    deploy, _ = pruned_report
    tuning = json.loads((deploy.parent / "manifest.json").read_text())["pruning"]["fine_tune"]
    assert tuning["mode"] == "supervised" and tuning["steps"] == 30
    steps = [p["step"] for p in tuning["curve"]]
    assert steps == [0, 10, 20, 30]
    assert all("pearson" in p and np.isfinite(p["held_out_loss"]) for p in tuning["curve"])


def test_report_compares_all_variants(pruned_report):
    deploy, report = pruned_report
    rows = {r["variant"]: r for r in report["variants"]}
    assert set(rows) == {
        "torch:fp32",
        "openvino:int8",
        "torch:fp32:pruned",
        "onnxruntime:int8:pruned",
        "openvino:int8:pruned",
        "openvino:fp32:pruned",  # the floor of the deployment choice
    }
    assert report["deployed"] == "openvino:int8:pruned"
    # the pruned model still denoises: close to its own fp32 after int8
    assert rows["openvino:int8:pruned"]["vs_ground_truth"]["pearson"] > 0.5
    md = (deploy.parent / "report.md").read_text()
    assert "openvino:int8:pruned" in md and "Pruning" in md


def test_deploy_config_loads_pruned_torch(pruned_report):
    deploy, _ = pruned_report
    cfg = load_config(deploy)
    assert cfg.artefacts["torch:fp32:pruned"] == "pruned/model_fp32.pt"
