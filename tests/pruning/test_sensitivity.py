"""The sensitivity sweep: one row per ratio; size falls as the ratio grows; the CLI prints it."""

import copy

from efficientbioai.cli import main
from efficientbioai.evaluation.prune_sweep import sensitivity_sweep
from tests.helpers import TINY, write_config


def test_sweep_rows(tmp_path, tiny_checkpoint, capsys):
    data = copy.deepcopy(TINY)
    data["model"]["checkpoint"] = str(tiny_checkpoint)
    data["data"]["evaluation"]["num_samples"] = 1
    path = write_config(tmp_path, data)
    rows = sensitivity_sweep(path, ratios=(0.0, 0.5), importance="l2", engine="onnxruntime", max_samples=1)
    assert [r["ratio"] for r in rows] == [0.0, 0.5]
    assert rows[1]["parameters"] < 0.5 * rows[0]["parameters"]
    assert rows[1]["onnx_mb"] < rows[0]["onnx_mb"] and rows[1]["gflops_per_tile"] < rows[0]["gflops_per_tile"]
    assert rows[0]["pearson_vs_unpruned"] > 0.999  # ratio 0 is the model itself
    assert rows[0]["pearson_vs_truth"] is not None
    code = main(
        ["prune-sweep", "--config", str(path), "--ratios", "0,0.3", "--engine", "onnxruntime", "--samples", "1"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "Pruning sensitivity" in out and "0.3" in out


def test_sweep_rejects_bad_ratio(tmp_path, tiny_checkpoint, capsys):
    data = copy.deepcopy(TINY)
    data["model"]["checkpoint"] = str(tiny_checkpoint)
    path = write_config(tmp_path, data)
    assert main(["prune-sweep", "--config", str(path), "--ratios", "0,1.2"]) == 2
    assert "--ratios" in capsys.readouterr().err
