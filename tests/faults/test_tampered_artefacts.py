"""Tampered artefacts are refused before anything runs (``efficientbioai.integrity``)."""

import json

import numpy as np
import torch

from efficientbioai.cli import main
from efficientbioai.integrity import CACHE
from tests.faults.helpers import experiment_copy


def _negate_first_weight(path):
    state = torch.load(path, weights_only=True)
    name = next(k for k, v in state.items() if v.is_floating_point() and v.ndim == 4)
    state[name] = -state[name]
    torch.save(state, path)


def _stream(exp, tmp_path, capsys, *extra):
    image = tmp_path / "img.npy"
    np.save(image, np.random.default_rng(0).gamma(2.0, 50.0, (64, 64)).astype(np.float32))
    code = main(["stream", "--config", str(exp / "deploy.yaml"), "--input", str(image),
                 "--output_dir", str(tmp_path / "out"), *extra])  # fmt: skip
    return code, capsys.readouterr().err


def test_tampered_checkpoint_is_refused(tiny_experiment, tmp_path, capsys):
    exp = experiment_copy(tiny_experiment, tmp_path)
    _negate_first_weight(exp / "model_fp32.pt")
    code, err = _stream(exp, tmp_path, capsys, "--variant", "torch:fp32")
    assert code == 2 and "model_fp32.pt: differs from the SHA-256 compress recorded" in err
    assert "--trust-modified" in err and not (tmp_path / "out").exists()


def test_same_size_bin_with_negated_weights_is_refused_and_trust_modified_runs_it(tiny_experiment, tmp_path, capsys):
    exp = experiment_copy(tiny_experiment, tmp_path)
    binary = exp / "openvino" / "model_int8.bin"
    data = bytearray(binary.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(b ^ 0x80 for b in data[len(data) // 2 : len(data) // 2 + 64])
    binary.write_bytes(bytes(data))  # same size; the cache must not trust it
    code, err = _stream(exp, tmp_path, capsys, "--variant", "openvino:int8")
    assert code == 2 and "model_int8.bin: differs from the SHA-256" in err
    code, err = _stream(exp, tmp_path, capsys, "--variant", "openvino:int8", "--trust-modified")
    assert code == 0 and (tmp_path / "out" / "img.tif").is_file()


def test_infer_checks_every_variant_before_running_any(tiny_experiment, tmp_path, capsys):
    exp = experiment_copy(tiny_experiment, tmp_path)
    (exp / "model_int8.onnx").unlink()  # the ONNX Runtime int8 variant, measured after torch and fp32
    assert main(["infer", "--config", str(exp / "deploy.yaml")]) == 2
    assert "model_int8.onnx: artefact missing" in capsys.readouterr().err
    assert not (exp / "report.json").exists() and not (exp / "predictions").exists()


def test_hashes_are_cached_by_size_and_time(tiny_experiment, tmp_path, capsys):
    exp = experiment_copy(tiny_experiment, tmp_path)
    assert _stream(exp, tmp_path, capsys)[0] == 0
    cache = json.loads((exp / CACHE).read_text())
    assert any(k.endswith("model_int8.bin") for k in cache)  # the deployed OpenVINO int8 IR and its weights


def test_tampered_onnx_is_refused_by_infer(tiny_experiment, tmp_path, capsys):
    exp = experiment_copy(tiny_experiment, tmp_path)
    onnx = exp / "model_int8.onnx"
    data = bytearray(onnx.read_bytes())
    data[-100] ^= 0xFF  # one byte of the weights, same size
    onnx.write_bytes(bytes(data))
    assert main(["infer", "--config", str(exp / "deploy.yaml")]) == 2
    assert "model_int8.onnx: differs from the SHA-256 compress recorded" in capsys.readouterr().err
    assert not (exp / "report.json").exists()
