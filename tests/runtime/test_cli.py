"""``efficientbioai stream`` and ``infer --resume`` on a compressed (tiny) DilatedLoc experiment."""

import numpy as np
import pytest
import tifffile
import torch
import yaml

from efficientbioai.cli import main
from efficientbioai.compression.build_experiment import compress
from efficientbioai.runtime.csv_sink import CsvTableSink
from efficientbioai.smlm.io import read_localizations
from tests.helpers import write_config
from tests.numerics import assert_same_detections, tolerance_of
from tests.runtime.test_tasks import SMLM


@pytest.fixture(scope="module")
def deploy(tmp_path_factory):
    from efficientbioai.config import parse_config
    from efficientbioai.parsers.base import create_parser

    folder = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    model = create_parser(parse_config(SMLM)).build_model()
    with torch.no_grad():
        model.head_p.out.bias.fill_(0.0)  # detects here and there
    torch.save(model.state_dict(), folder / "dl.pt")
    cfg = {
        **SMLM,
        "model": {**SMLM["model"], "checkpoint": str(folder / "dl.pt")},
        "data": {"calibration": {"num_samples": 2}},
        "report": {
            "compare": ["torch:fp32", "openvino:int8"],
            "latency": {"warmup": 1, "runs": 3},
            "energy": {"enabled": False},
        },
    }
    deploy = compress(write_config(folder, cfg), folder / "exp")
    stack = np.random.default_rng(0).gamma(2.0, 60.0, (30, 32, 32)) + 100
    tifffile.imwrite(folder / "movie.tif", stack.astype(np.uint16))
    return deploy, folder / "movie.tif"


def test_stream_then_interrupted_and_resumed(deploy, tmp_path, monkeypatch, capsys):
    deploy, movie = deploy
    args = ["stream", "--config", str(deploy), "--input", str(movie)]
    assert main([*args, "--output_dir", str(tmp_path / "full")]) == 0
    full = (tmp_path / "full" / "movie.csv").read_bytes()
    assert "30 frames in" in capsys.readouterr().out and len(read_localizations(tmp_path / "full" / "movie.csv")) > 0
    # the same rows as the whole-stack path with the same engine (OpenVINO's async queue here)
    from efficientbioai.config import load_config
    from efficientbioai.engines.factory import create_engine
    from efficientbioai.parsers.base import Sample, create_parser
    from efficientbioai.registry import TASKS

    config = load_config(deploy)
    parser = create_parser(config)
    whole = TASKS.get("localize")(config, parser).predict(
        create_engine("openvino:int8", config, parser), Sample("m", tifffile.imread(movie).astype(np.float32))
    )
    windows = torch.from_numpy(tifffile.imread(movie).astype(np.float32)[:, None])
    tol = tolerance_of(parser.load_model(), windows)  # an int8 engine: the same kernels, other batch sizes
    assert_same_detections(read_localizations(tmp_path / "full" / "movie.csv"), whole[:, :6], tol)

    real = CsvTableSink._write

    def ctrl_c_at_chunk_5(self, chunk, table):
        if chunk.index == 5:
            raise KeyboardInterrupt
        real(self, chunk, table)

    monkeypatch.setattr(CsvTableSink, "_write", ctrl_c_at_chunk_5)
    assert main([*args, "--output_dir", str(tmp_path / "cut")]) == 130
    assert "kept for --resume" in capsys.readouterr().err
    assert not (tmp_path / "cut" / "movie.csv").exists()
    monkeypatch.setattr(CsvTableSink, "_write", real)
    assert main([*args, "--output_dir", str(tmp_path / "cut"), "--resume"]) == 0
    assert "(5 chunks resumed)" in capsys.readouterr().out
    assert (tmp_path / "cut" / "movie.csv").read_bytes() == full


def test_stream_errors_are_one_line(deploy, tmp_path, capsys):
    deploy, _ = deploy
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00garbage")
    assert main(["stream", "--config", str(deploy), "--input", str(bad)]) == 2
    assert "bad.tif: cannot read TIFF" in capsys.readouterr().err


def test_infer_streams_user_stacks_with_two_workers_and_resumes(deploy, tmp_path):
    deploy, movie = deploy
    data = yaml.safe_load(deploy.read_text())
    data["inference"]["input"] = str(movie)
    data["inference"]["output_dir"] = str(tmp_path / "pred")
    data["runtime"]["workers"] = [{"threads": 1}, {"threads": 1}]
    staged = deploy.with_name("deploy_stream.yaml")
    staged.write_text(yaml.safe_dump(data))
    report = main(["infer", "--config", str(staged), "--resume"])
    assert report == 0
    assert sorted(p.name for p in (tmp_path / "pred").iterdir() if p.suffix == ".csv") == ["movie.csv"]
    import json

    rows = {r["variant"]: r for r in json.loads((deploy.parent / "report.json").read_text())["variants"]}
    assert rows["openvino:int8"]["stream"]["workers"] == 2 and rows["openvino:int8"]["units"] == 30
    assert rows["openvino:int8"]["stream"]["chunks"] == 8  # 30 frames in chunks of 4
    assert rows["openvino:int8"]["vs_fp32"]["jaccard"] > 0.5
