"""The shipped denoisers: they load safely, denoise held-out images, and survive int8."""

from pathlib import Path

import numpy as np
import pytest

from efficientbioai.api.infer import run_inference
from efficientbioai.compression.build_experiment import compress
from efficientbioai.config import dump_config, load_config
from efficientbioai.engines.torch_engine import TorchModule
from efficientbioai.parsers.base import create_parser

ROOT = Path(__file__).resolve().parent.parent


def _small_run(dims: int, tmp_path: Path, samples: int, variants: list[str]) -> dict:
    cfg = load_config(ROOT / "configs" / f"monai_unet_denoise{dims}d.yaml")
    cfg.data.evaluation.num_samples = samples
    cfg.report.compare = variants
    cfg.report.latency.runs = 3
    cfg.report.latency.warmup = 1
    cfg.report.energy.enabled = False
    path = tmp_path / "cfg.yaml"
    path.write_text(dump_config(cfg))
    return run_inference(compress(path, tmp_path / "exp"))


def test_2d_denoiser_fp32_and_int8_on_held_out_images(tmp_path):
    report = _small_run(2, tmp_path, 2, ["torch:fp32", "onnxruntime:int8", "openvino:int8"])
    rows = {r["variant"]: r for r in report["variants"]}
    fp32 = rows["torch:fp32"]["vs_ground_truth"]["pearson"]
    noisy_baseline = _noisy_pearson(2)
    assert fp32 > 0.9 and fp32 > noisy_baseline + 0.1  # the network really denoises
    # OpenVINO int8 is accuracy-controlled (max_accuracy_drop 0.005 on validation tiles)
    assert rows["openvino:int8"]["vs_ground_truth"]["pearson"] > fp32 - 0.01
    assert rows["openvino:int8"]["vs_fp32"]["pearson"] > 0.99
    # ONNX Runtime int8 has percentile calibration and the float output stage only
    assert rows["onnxruntime:int8"]["vs_ground_truth"]["pearson"] > fp32 - 0.02
    assert rows["onnxruntime:int8"]["vs_fp32"]["pearson"] > 0.98


@pytest.mark.slow
def test_3d_denoiser_fp32_and_int8_on_held_out_volumes(tmp_path):
    report = _small_run(3, tmp_path, 1, ["torch:fp32", "openvino:int8"])
    rows = {r["variant"]: r for r in report["variants"]}
    fp32 = rows["torch:fp32"]["vs_ground_truth"]["pearson"]
    assert fp32 > 0.85
    assert rows["openvino:int8"]["vs_ground_truth"]["pearson"] > fp32 - 0.01


def test_3d_checkpoint_loads_and_runs_a_tile():
    parser = create_parser(load_config(ROOT / "configs" / "monai_unet_denoise3d.yaml"))
    engine = TorchModule(parser.load_model())
    x = np.random.default_rng(0).random((1, 1, 16, 32, 32), dtype=np.float32)
    assert engine(x).shape == x.shape


def _noisy_pearson(dims: int) -> float:
    from efficientbioai.tasks.image_metrics import pearson

    parser = create_parser(load_config(ROOT / "configs" / f"monai_unet_denoise{dims}d.yaml"))
    sample = next(parser.evaluation_samples())
    return pearson(sample.image[0], sample.target)
