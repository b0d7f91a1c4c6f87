"""End to end on a tiny model: train (through the CLI), compress, reconstruct, report."""

import json

import numpy as np
import pytest
import tifffile
import torch

from efficientbioai.api.infer import run_inference
from efficientbioai.cli import main
from efficientbioai.compression.build_experiment import compress
from efficientbioai.config import parse_config
from efficientbioai.errors import ConfigError, InputError
from efficientbioai.parsers.base import create_parser
from efficientbioai.registry import PARSERS, TASKS
from efficientbioai.smlm.io import read_localizations, write_thunderstorm
from tests.deepstorm.helpers import TINY
from tests.helpers import write_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """TINY with a checkpoint trained for 4 steps by ``efficientbioai train``."""
    folder = tmp_path_factory.mktemp("ds")
    cfg = {**TINY, "model": {**TINY["model"], "checkpoint": str(folder / "ds.pt")}}
    assert main(["train", "--config", str(write_config(folder, cfg)), "--output", str(folder / "ds.pt")]) == 0
    return cfg, folder


def test_training_writes_weights_and_record(trained):
    cfg, folder = trained
    state = torch.load(folder / "ds.pt", weights_only=True)
    assert float(state["norm_std"]) > 0 and float(state["norm_mean"]) > 0  # dataset stats, not the defaults
    record = json.loads((folder / "ds.json").read_text())
    assert record["command"].startswith("efficientbioai train --config")
    assert record["parameters"] == sum(p.numel() for p in create_parser(parse_config(cfg)).build_model().parameters())
    assert [r["step"] for r in record["validation"]] == [2, 4]
    assert {"val_loss", "nmse", "psnr"} <= set(record["validation"][0])
    assert record["normalisation"]["mean"] == pytest.approx(float(state["norm_mean"]))


def test_registered_and_parser_checks():
    assert PARSERS.get("deepstorm").__name__ == "DeepSTORMParser"
    assert TASKS.get("reconstruct").__name__ == "ReconstructionTask"
    bad = {**TINY, "model": {"parser": "deepstorm", "params": {"depth": 3}}}
    with pytest.raises(ConfigError, match=r"no parameter\(s\) \['depth'\]"):
        create_parser(parse_config(bad)).build_model()
    bad = {**TINY, "model": {"parser": "deepstorm", "params": {"variant": "vit"}}}
    with pytest.raises(ConfigError, match="variant must be one of"):
        create_parser(parse_config(bad)).build_model()
    with pytest.raises(ConfigError, match="multiple of 4"):
        create_parser(parse_config({**TINY, "inference": {"tile": [30, 30]}})).example_input()
    with pytest.raises(ConfigError, match="needs a 'simulation' section"):
        next(create_parser(parse_config({**TINY, "simulation": None})).calibration_inputs())


def test_dynamic_axes_follow_the_frame_sum():
    axes = create_parser(parse_config(TINY)).dynamic_axes()
    assert axes["input"] == {0: "batch", 2: "height", 3: "width"}
    assert axes["output"] == {2: "sr_height", 3: "sr_width"}  # one summed image per batch
    per_frame = {**TINY, "model": {"parser": "deepstorm", "params": {"width": 8, "sum_frames": False}}}
    assert create_parser(parse_config(per_frame)).dynamic_axes()["output"][0] == "batch"


@pytest.fixture(scope="module")
def experiment(trained, tmp_path_factory):
    cfg, _ = trained
    folder = tmp_path_factory.mktemp("exp")
    return compress(write_config(folder, cfg), folder / "exp")


def test_compress_and_reconstruct_the_simulated_stack(experiment):
    report = run_inference(experiment)
    rows = {r["variant"]: r for r in report["variants"]}
    assert report["task"] == "reconstruct" and report["unit"] == "frames"
    assert report["report_metrics"] == ["nmse", "psnr"]
    for variant in ("torch:fp32", "onnxruntime:int8", "openvino:int8"):
        assert rows[variant]["units"] == 12
        assert set(rows[variant]["vs_ground_truth"]) == {"nmse", "psnr"}
    assert rows["torch:fp32"]["vs_fp32"]["nmse"] == pytest.approx(0.0, abs=1e-9)
    pred = experiment.parent / "predictions"
    sr = tifffile.imread(pred / "simulated_test_sr.tif")
    assert sr.shape == (256, 256) and (sr >= 0).all()
    assert (pred / "simulated_test_sr.png").is_file() and (pred / "simulated_test_truth.png").is_file()
    assert read_localizations(pred / "simulated_test_maxima.csv").shape[1] == 6


def test_reconstruct_files_with_positions_as_truth(experiment, tmp_path):
    """A TIFF stack of odd size, streamed, with ground truth from a ThunderSTORM CSV."""
    from efficientbioai.config import load_config
    from efficientbioai.deepstorm.filaments import simulate_filament_stack
    from efficientbioai.engines.factory import create_engine

    cfg = load_config(experiment)
    frames, truth = simulate_filament_stack(cfg.simulation.for_test(), cfg.deepstorm.filaments, 5, seed=123)
    tifffile.imwrite(tmp_path / "stack.tif", frames[:, :30, :29].astype(np.uint16))
    keep = (truth[:, 1] < 2900) & (truth[:, 2] < 3000)
    write_thunderstorm(tmp_path / "stack.csv", truth[keep])
    cfg.inference.input, cfg.inference.target = tmp_path / "stack.tif", tmp_path / "stack.csv"
    parser = create_parser(cfg)
    task = TASKS.get("reconstruct")(cfg, parser)
    (sample,) = list(task.samples())
    assert sample.target.shape == (240, 232) and sample.target.sum() == keep.sum()
    # keep the engine alive until the end: destroying an OpenVINO engine right after map_batches
    # can abort the process ("Resource deadlock avoided" from an OpenVINO worker thread)
    engine = create_engine("openvino:int8", cfg, parser)
    out = task.predict(engine, sample)
    assert out.shape == (240, 232)
    assert np.isfinite(list(task.score(out, sample.target).values())).all()
    del engine


def test_bad_input_stacks(experiment, tmp_path):
    from efficientbioai.config import load_config

    cfg = load_config(experiment)
    task = TASKS.get("reconstruct")(cfg, create_parser(cfg))
    tifffile.imwrite(tmp_path / "flat.tif", np.zeros((32, 32), np.uint16))
    cfg.inference.input = tmp_path / "flat.tif"
    with pytest.raises(InputError, match="must be 3D"):
        list(task.samples())
    np.save(tmp_path / "nan.npy", np.full((3, 16, 16), np.nan, np.float32))
    cfg.inference.input = tmp_path / "nan.npy"
    (sample,) = list(task.samples())  # memory-mapped: checked while streaming
    from efficientbioai.engines.torch_engine import TorchModule

    with pytest.raises(InputError, match="NaN/Inf pixels (in|from) frame 1"):
        task.predict(TorchModule(create_parser(cfg).load_model()), sample)


def test_per_frame_export_keeps_its_output_layer_in_float(trained, tmp_path):
    """Without the in-graph sum every frame's image leaves the engine; both int8 builds still find the head."""
    cfg, _ = trained
    cfg = {
        **cfg,
        "model": {**cfg["model"], "params": {**cfg["model"]["params"], "sum_frames": False}},
        "simulation": {**cfg["simulation"], "test": {**cfg["simulation"]["test"], "frames": 6}},
    }
    report = run_inference(compress(write_config(tmp_path, cfg), tmp_path / "exp"))
    rows = {r["variant"]: r for r in report["variants"]}
    assert rows["openvino:int8"]["units"] == 6 and rows["onnxruntime:int8"]["vs_fp32"]["nmse"] < 50


def test_pruned_int8_chain_fine_tunes_with_deepstorm_loss(trained, tmp_path):
    """prune → Deep-STORM fine-tuning (its loss, simulated patches) → int8, in one compress run;
    the deployed pruned model still sums frames in its graph."""
    cfg, _ = trained
    cfg = {
        **cfg,
        "prune": {"enabled": True, "ratio": 0.5, "fine_tune": {"steps": 4, "batch_size": 4, "eval_every": 2}},
        "report": {**cfg["report"], "compare": ["torch:fp32", "openvino:int8", "torch:fp32:pruned"]},
    }
    deploy = compress(write_config(tmp_path, cfg), tmp_path / "exp")
    manifest = json.loads((deploy.parent / "manifest.json").read_text())
    tuning = manifest["pruning"]["fine_tune"]
    assert tuning["mode"] == "deepstorm training (simulated patches)"
    assert [p["step"] for p in tuning["curve"]] == [0, 2, 4]
    assert {"val_loss", "nmse", "psnr"} <= set(tuning["curve"][-1])
    assert manifest["pruning"]["after"]["parameters"] < 0.5 * manifest["pruning"]["before"]["parameters"]
    report = run_inference(deploy)
    rows = {r["variant"]: r for r in report["variants"]}
    assert {"openvino:int8:pruned", "torch:fp32:pruned"} <= set(rows)
    assert np.isfinite(rows["openvino:int8:pruned"]["vs_ground_truth"]["nmse"])
