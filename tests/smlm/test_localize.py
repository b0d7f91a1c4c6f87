"""The localize task and the dilatedloc parser, end to end on a small untrained network."""

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from efficientbioai.api.infer import run_inference
from efficientbioai.compression.build_experiment import compress
from efficientbioai.config import parse_config
from efficientbioai.engines.torch_engine import TorchModule
from efficientbioai.errors import ConfigError, InputError
from efficientbioai.io.frames import check_movie
from efficientbioai.parsers.base import Sample, create_parser
from efficientbioai.registry import TASKS
from efficientbioai.smlm.io import read_localizations
from tests.helpers import write_config

CFG = {
    "model": {"parser": "dilatedloc", "params": {"width": 8}},
    "simulation": {"frame_shape": [32, 32], "test": {"frames": 6}},
    "data": {"calibration": {"num_samples": 4}},
    "inference": {"task": "localize", "tile": [32, 32], "batch_size": 4},
    "report": {
        "compare": ["torch:fp32", "openvino:int8", "onnxruntime:int8"],
        "latency": {"warmup": 1, "runs": 3},
        "energy": {"enabled": False},
    },
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """CFG with a checkpoint trained for 40 steps (untrained nets saturate their heads on raw ADU)."""
    from efficientbioai.training.dilatedloc import train_dilatedloc

    folder = tmp_path_factory.mktemp("dl")
    cfg = {
        **CFG,
        "model": {**CFG["model"], "checkpoint": str(folder / "dl.pt")},
        "train": {"steps": 40, "batch_size": 4, "validation_every": 40, "validation_frames": 8},
    }
    assert train_dilatedloc(write_config(folder, cfg), output=folder / "dl.pt") == folder / "dl.pt"
    return cfg


def test_resume_keeps_the_record_of_the_run_it_continues(tmp_path, trained):
    import json
    import shutil

    from efficientbioai.training.dilatedloc import train_dilatedloc

    ckpt = tmp_path / "dl.pt"
    shutil.copy(trained["model"]["checkpoint"], ckpt)
    shutil.copy(Path(trained["model"]["checkpoint"]).with_suffix(".json"), ckpt.with_suffix(".json"))
    first = json.loads(ckpt.with_suffix(".json").read_text())
    cfg = {
        **trained,
        "model": {**trained["model"], "checkpoint": str(ckpt)},
        "train": {"steps": 2, "batch_size": 2, "validation_every": 2, "validation_frames": 4},
    }
    before = torch.load(ckpt, weights_only=True)
    train_dilatedloc(write_config(tmp_path, cfg), resume=True, output=ckpt)  # continue in place, as asked
    record = json.loads(ckpt.with_suffix(".json").read_text())
    assert record["command"].endswith(f"--resume --output {ckpt}") and record["resumed_from"] == first
    assert [v["step"] for v in record["validation"]] == [2]
    after = torch.load(ckpt, weights_only=True)
    # it continued from the saved weights (two small steps away), not from a fresh initialisation
    weights = [k for k in before if k.endswith(".weight")]
    moved = sum(float((after[k] - before[k]).norm() ** 2) for k in weights) ** 0.5
    size = sum(float(before[k].norm() ** 2) for k in weights) ** 0.5
    assert 0 < moved < 0.05 * size
    assert not list(tmp_path.glob(".*partial"))


def test_training_never_overwrites_the_configs_checkpoint_unless_asked(tmp_path, trained):
    """Without --output the weights go to a new file beside model.checkpoint (a shipped model is
    never overwritten); --resume still continues from model.checkpoint."""
    import shutil

    from efficientbioai.training.dilatedloc import train_dilatedloc

    ckpt = tmp_path / "shipped.pt"
    shutil.copy(trained["model"]["checkpoint"], ckpt)
    before = ckpt.read_bytes()
    cfg = {**trained, "model": {**trained["model"], "checkpoint": str(ckpt)}}
    cfg["train"] = {"steps": 1, "batch_size": 2, "validation_every": 1, "validation_frames": 4}
    out = train_dilatedloc(write_config(tmp_path, cfg), resume=True)
    assert out.parent == tmp_path and out.name.startswith("shipped_trained_") and out.is_file()
    assert ckpt.read_bytes() == before


def test_stack_checks():
    assert check_movie(np.zeros((16, 16)), "frame").shape == (1, 16, 16)
    with pytest.raises(InputError, match="must be 3D \\(frames, height, width\\)"):
        check_movie(np.zeros((2, 3, 16, 16)), "x.tif")
    with pytest.raises(InputError, match="smaller than the minimum"):
        check_movie(np.zeros((5, 4, 16)), "x.tif")


def test_parser_validates_params_and_needs_simulation():
    with pytest.raises(ConfigError, match="no parameter\\(s\\) \\['depth'\\]"):
        create_parser(parse_config({**CFG, "model": {"parser": "dilatedloc", "params": {"depth": 3}}})).build_model()
    parser = create_parser(parse_config({**CFG, "simulation": None}))
    with pytest.raises(ConfigError, match="needs a 'simulation' section"):
        next(parser.calibration_inputs())


def test_predict_odd_frames_and_empty_frames():
    cfg = parse_config(CFG)
    parser = create_parser(cfg)
    task = TASKS.get("localize")(cfg, parser)
    model = parser.build_model().eval()
    with torch.no_grad():
        model.head_p.out.bias.fill_(16.0)  # every pixel "detects": exercises the whole path
    from efficientbioai.parsers.base import Sample

    table = task.predict(TorchModule(model), Sample("odd", np.full((3, 33, 35), 100.0, np.float32)))
    assert table.shape[1] == 7 and set(np.unique(table[:, 0])) <= {1.0, 2.0, 3.0}
    # the padded column/row is cropped: centres stop at the last real pixel (offsets reach ±1 px)
    assert table[:, 1].max() <= (34 + 0.5 + 1) * 100 and table[:, 2].max() <= (32 + 0.5 + 1) * 100
    with torch.no_grad():
        model.head_p.out.bias.fill_(-16.0)
    empty = task.predict(TorchModule(model), Sample("empty", np.zeros((2, 32, 32), np.float32)))
    assert empty.shape == (0, 7)


def test_compress_and_localize_end_to_end(tmp_path, trained):
    deploy = compress(write_config(tmp_path, trained), tmp_path / "exp")
    report = run_inference(deploy)
    rows = {r["variant"]: r for r in report["variants"]}
    assert report["primary_metric"] == "jaccard"
    assert set(rows["torch:fp32"]["vs_ground_truth"]) >= {"jaccard", "rmse_lateral", "efficiency_3d"}
    csv = rows["openvino:int8"]["outputs"][0]
    assert csv.endswith(".csv") and read_localizations(csv).shape[1] == 6
    manifest = (tmp_path / "exp" / "manifest.json").read_text()
    assert "/head_*" in manifest and "/output/*" in manifest


def test_post_processing_exported_into_the_graph(tmp_path, trained):
    """``inference.localization.in_graph``: the engines return dense maps, the same detections."""
    import onnx

    from efficientbioai.config import load_config
    from efficientbioai.engines.factory import create_engine
    from efficientbioai.parsers.base import Sample
    from efficientbioai.smlm.simulated_training import SEEDS, simulate_batch

    cfg = {**trained, "inference": {**trained["inference"], "localization": {"in_graph": True}}}
    variants = ["torch:fp32", "openvino:fp32", "openvino:int8", "onnxruntime:int8"]
    cfg["report"] = {**trained["report"], "compare": variants}
    deploy = compress(write_config(tmp_path, cfg), tmp_path / "exp")
    model = onnx.load(tmp_path / "exp" / "model.onnx")
    assert any(n.name.startswith("/post/") for n in model.graph.node)
    assert "/post/*" in (tmp_path / "exp" / "manifest.json").read_text()  # kept in float
    dcfg = load_config(deploy)
    parser = create_parser(dcfg)
    task = TASKS.get("localize")(dcfg, parser)
    sim = dcfg.simulation.model_copy(update={"frame_shape": [48, 80], "density_per_um2": [1.0, 1.0]})
    frames = simulate_batch(sim, 5, SEEDS["evaluation"])[0][:, 0]  # not the export's frame size
    sample = Sample("s", frames, None)
    ref = task.predict(create_engine("torch:fp32", dcfg, parser), sample)
    got = task.predict(create_engine("openvino:fp32", dcfg, parser), sample)
    assert len(ref) > 0 and got.shape == ref.shape
    np.testing.assert_allclose(got[:, :3], ref[:, :3], atol=0.05)  # frame, x, y (nm)
    report = run_inference(deploy, variants=["torch:fp32", "openvino:int8", "onnxruntime:int8"])
    rows = {r["variant"]: r["vs_ground_truth"]["jaccard"] for r in report["variants"]}
    assert min(rows["openvino:int8"], rows["onnxruntime:int8"]) >= rows["torch:fp32"] - 0.1


def test_user_stack_is_checked(tmp_path, trained):
    deploy = compress(write_config(tmp_path, trained), tmp_path / "exp")
    tifffile.imwrite(tmp_path / "bad.tif", np.zeros((2, 2, 32, 32), np.uint16))
    import yaml

    data = yaml.safe_load(deploy.read_text())
    data["inference"]["input"] = str(tmp_path / "bad.tif")
    deploy.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match="bad.tif: an SMLM stack must be"):
        run_inference(deploy, variants=["openvino:int8"])


def test_temporal_context_blinking_and_windows():
    from efficientbioai.smlm.simulated_training import simulate_batch, simulate_blinking_stack

    cfg = parse_config({**CFG, "model": {"parser": "dilatedloc", "params": {"width": 8, "frames": 3}}})
    sim = cfg.simulation
    x, truth, mask = simulate_batch(sim, 2, 5, frames=3)
    assert x.shape == (2, 3, 32, 32) and truth.shape[0] == 2
    frames, table = simulate_blinking_stack(sim.model_copy(update={"density_per_um2": (1.0, 1.0)}), 30, 7)
    assert frames.shape == (30, 32, 32) and set(np.unique(table[:, 0])) <= set(range(1, 31))
    # blinking: some emitters stay on into the next frame at the same position
    f1, f2 = table[table[:, 0] == 10, 1:3], table[table[:, 0] == 11, 1:3]
    shared = sum(np.any(np.all(np.isclose(p, f2), axis=1)) for p in f1)
    assert shared >= 1
    parser = create_parser(cfg)
    task = TASKS.get("localize")(cfg, parser)
    stack = np.arange(5, dtype=np.float32)[:, None, None] * np.ones((5, 16, 16), np.float32)
    job = task.stream(Sample("s", stack))  # the windows the one inference path feeds the network
    (chunk,) = job.chunks()
    win = np.concatenate([x for x, _ in job.batches(chunk, job.load(chunk))])
    assert (
        win.shape == (5, 3, 16, 16) and win[0, :, 0, 0].tolist() == [0, 0, 1] and win[4, :, 0, 0].tolist() == [3, 4, 4]
    )
    table = task.predict(TorchModule(parser.build_model().eval()), next(task.samples()))
    assert table.shape[1] == 7
