"""compress → deploy.yaml → inference, end to end on the tiny model."""

import json
import subprocess
import sys

import pytest
import yaml

from efficientbioai.api.infer import run_inference
from efficientbioai.compression import build_experiment
from efficientbioai.compression.build_experiment import compress
from efficientbioai.errors import ArtefactError, InputError
from efficientbioai.manifest import sha256


def test_compress_writes_deploy_and_manifest(tiny_experiment):
    deploy = yaml.safe_load((tiny_experiment / "deploy.yaml").read_text())
    manifest = json.loads((tiny_experiment / "manifest.json").read_text())
    assert set(deploy["artefacts"]) == {
        "torch:fp32",
        "onnxruntime:fp32",
        "onnxruntime:int8",
        "openvino:fp32",
        "openvino:int8",
    }
    assert deploy["model"]["checkpoint"] == "model_fp32.pt"
    for name, digest in manifest["sha256"].items():
        assert sha256(tiny_experiment / name) == digest
    steps = [s["step"] for s in manifest["steps"]]
    assert steps[:3] == ["load model", "calibration data", "export onnx"]
    export = manifest["steps"][2]
    assert 0 < export["float32_noise"] and export["max_relative_error"] <= export["tolerance"]
    assert export["subpixel_deconvolutions"] == 2  # the tiny U-Net's two up-sampling layers
    assert manifest["model"]["parameters"] > 0 and manifest["model"]["flops_per_tile"] > 0
    assert manifest["calibration"]["num_samples"] == 4
    assert {"torch", "onnxruntime", "openvino", "nncf"} <= set(manifest["versions"])
    assert not list(tiny_experiment.parent.glob(".*partial"))


def test_report_compares_variants(tiny_report, tiny_experiment):
    rows = {r["variant"]: r for r in tiny_report["variants"]}
    assert list(rows)[0] == "torch:fp32"
    assert rows["torch:fp32"]["vs_fp32"]["pearson"] == pytest.approx(1.0)
    for variant in ("onnxruntime:int8", "openvino:int8"):
        assert rows[variant]["vs_fp32"]["pearson"] > 0.98
        gap = rows["torch:fp32"]["vs_ground_truth"]["pearson"] - rows[variant]["vs_ground_truth"]["pearson"]
        assert gap < 0.03
    for row in rows.values():
        assert row["latency"]["runs"] == 3 and row["latency"]["median_ms"] > 0
        assert row["artefact_bytes"] > 0
    md = (tiny_experiment / "report.md").read_text()
    assert "| openvino:int8 |" in md and "speed-up" in md
    outputs = rows["openvino:int8"]["outputs"]
    assert len(outputs) == 2 and all(o.endswith(".tif") for o in outputs)


def test_existing_exp_path_is_refused_unless_overwrite(tiny_config, tmp_path):
    exp = tmp_path / "exp"
    exp.mkdir()
    with pytest.raises(InputError, match="exists.*--overwrite"):
        compress(tiny_config, exp)


def test_failed_run_leaves_nothing_that_looks_complete(tiny_config, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C during quantization

    monkeypatch.setattr(build_experiment, "_build_variant", boom)
    exp = tmp_path / "exp"
    with pytest.raises(KeyboardInterrupt):
        compress(tiny_config, exp)
    assert not exp.exists()
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_the_old_experiment(tiny_config, tiny_experiment, tmp_path, monkeypatch):
    import shutil

    exp = tmp_path / "copy"
    shutil.copytree(tiny_experiment, exp)
    monkeypatch.setattr(build_experiment, "_build_variant", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("x")))
    with pytest.raises(RuntimeError):
        compress(tiny_config, exp, overwrite=True)
    assert (exp / "manifest.json").is_file() and (exp / "deploy.yaml").is_file()


def test_inference_refuses_a_plain_config(tiny_config):
    with pytest.raises(ArtefactError, match="not a finished compress.py output"):
        run_inference(tiny_config)


def test_cli_prints_clear_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {parser: monai_unet, checkpoint: missing.pt, params: {channels: [4, 8], strides: [2]}}\n")
    cmd = [sys.executable, "efficientbioai/compress.py", "--config", str(bad), "--exp_path", str(tmp_path / "e")]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 2
    assert "error: model.checkpoint:" in res.stderr and "Traceback" not in res.stderr
    res = subprocess.run(
        [sys.executable, "efficientbioai/inference.py", "--config", str(bad)], capture_output=True, text=True
    )
    assert res.returncode == 2 and "not a finished compress.py output" in res.stderr
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("model: {parser: resnet9000}\n")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "efficientbioai.cli",
            "compress",
            "--config",
            str(unknown),
            "--exp_path",
            str(tmp_path / "e"),
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and "unknown parser 'resnet9000'" in res.stderr


def _deploy_copy(tiny_experiment, tmp_path, **inference):
    import shutil

    exp = tmp_path / "exp"
    shutil.copytree(tiny_experiment, exp)
    data = yaml.safe_load((exp / "deploy.yaml").read_text())
    data["inference"].update({k: str(v) for k, v in inference.items()})
    (exp / "deploy.yaml").write_text(yaml.safe_dump(data))
    return exp / "deploy.yaml"


def test_inference_on_user_files_rejects_wrong_shape(tiny_experiment, tmp_path):
    import numpy as np
    import tifffile

    folder = tmp_path / "imgs"
    folder.mkdir()
    tifffile.imwrite(folder / "stack.tif", np.ones((5, 3, 64, 64), np.uint16))
    deploy = _deploy_copy(tiny_experiment, tmp_path, input=folder)
    with pytest.raises(InputError, match="stack.tif: shape \\(5, 3, 64, 64\\) does not fit a 2D model"):
        run_inference(deploy, variants=["openvino:int8"])


def test_inference_on_user_files_writes_tiffs(tiny_experiment, tmp_path):
    import numpy as np
    import tifffile

    from efficientbioai.datasets.fluorescence import make_pair

    folder = tmp_path / "imgs"
    for i in range(2):
        noisy, clean = make_pair((70, 90), 900 + i)
        (folder / "raw").mkdir(parents=True, exist_ok=True)
        (folder / "gt").mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(folder / "raw" / f"img{i}.tif", np.clip(noisy, 0, None).astype(np.uint16))
        tifffile.imwrite(folder / "gt" / f"img{i}.tif", clean)
    deploy = _deploy_copy(
        tiny_experiment, tmp_path, input=folder / "raw", target=folder / "gt", output_dir=tmp_path / "pred"
    )
    report = run_inference(deploy, variants=["torch:fp32", "openvino:int8"])
    assert sorted(p.name for p in (tmp_path / "pred").iterdir()) == ["img0.tif", "img1.tif"]
    assert tifffile.imread(tmp_path / "pred" / "img0.tif").shape == (70, 90)
    assert report["variants"][1]["vs_ground_truth"]["pearson"] > 0.5


def test_unknown_engine_name_in_config(tiny_config, tmp_path):
    from efficientbioai.config import load_config
    from efficientbioai.errors import ConfigError

    bad = tmp_path / "bad.yaml"
    bad.write_text(tiny_config.read_text() + "engine: {name: tensorflow, precision: int8}\n")
    with pytest.raises(ConfigError, match="unknown engine 'tensorflow'"):
        load_config(bad)
