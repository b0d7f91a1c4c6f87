"""The accuracy budget and the deployment choice: the fastest variant on this machine within the
budget on the validation split, never one slower than openvino:fp32, the reason written down."""

from __future__ import annotations

import importlib
import json
import logging

import pytest
import yaml

from efficientbioai.budget import BudgetTerm, check_budget, parse_budget
from efficientbioai.cli import main
from efficientbioai.config import load_config, parse_config
from efficientbioai.errors import ConfigError, InputError
from efficientbioai.evaluation.accuracy_budget import budget_terms
from efficientbioai.evaluation.selection import choose
from efficientbioai.parsers.base import create_parser
from efficientbioai.registry import TASKS
from tests.helpers import TINY, write_config


def _task(data: dict):
    config = parse_config(data)
    parser = create_parser(config)
    return config, TASKS.get(parser.task_name)(config, parser)


def test_budget_terms_parse_signed_absolute_and_relative_changes():
    jac, rmse = parse_budget({"jaccard": -0.01, "rmse_lateral": "+5%"})
    assert (jac.change, jac.relative, rmse.change, rmse.relative) == (-0.01, False, 5.0, True)
    assert rmse.limit(30.0) == pytest.approx(31.5) and jac.limit(0.8) == pytest.approx(0.79)
    fp32 = {"jaccard": 0.8, "rmse_lateral": 30.0}
    assert check_budget((jac, rmse), fp32, {"jaccard": 0.7901, "rmse_lateral": 31.4})["within"]
    out = check_budget((jac, rmse), fp32, {"jaccard": 0.80, "rmse_lateral": 31.6})
    assert not out["within"] and [t["within"] for t in out["terms"]] == [True, False]
    assert not BudgetTerm("nmse", 1.0).within(10.0, float("nan"))  # a metric that failed is outside
    assert not check_budget((jac,), fp32, {"rmse_lateral": 1.0})["within"]  # a missing metric too


@pytest.mark.parametrize("bad", [{"pearson": 0}, {"pearson": "five"}, {}])
def test_a_bad_budget_is_a_config_error_naming_the_fix(bad):
    with pytest.raises(ConfigError, match="budget"):
        parse_config({**TINY, "deploy": {"budget": bad}})


def test_each_family_has_its_default_budget_and_deploy_budget_overrides_it():
    config, task = _task(TINY)
    assert [str(t) for t in budget_terms(config, task)] == ["pearson -0.005"]
    config, task = _task({**TINY, "deploy": {"budget": {"ssim": "-1%"}}})
    assert [str(t) for t in budget_terms(config, task)] == ["ssim -1%"]
    # configs written before deploy.budget: their max_accuracy_drop is a budget on the primary metric
    config, task = _task({**TINY, "report": {**TINY["report"], "max_accuracy_drop": 0.02}})
    assert [str(t) for t in budget_terms(config, task)] == ["pearson -0.02"]
    defaults = {name: TASKS.get(name).default_budget for name in ("localize", "segment", "instance", "reconstruct")}
    assert defaults == {
        "localize": {"jaccard": -0.01, "rmse_lateral": "+5%"},
        "segment": {"dice": -0.01},
        "instance": {"ap50": -0.02},
        "reconstruct": {"nmse": 1.0},
    }


def _row(variant: str, ms: float, pearson: float | None) -> dict:
    row = {"variant": variant, "precision": variant.split(":")[1], "latency": {"median_ms": ms}}
    if pearson is not None:
        row["scores"] = {"pearson": pearson}
    return row


def test_the_fastest_variant_within_budget_is_chosen():
    config = parse_config(TINY)
    terms = parse_budget({"pearson": -0.005})
    rows = [
        _row("torch:fp32", 50.0, 0.90),
        _row("openvino:fp32", 20.0, 0.90),
        _row("openvino:int8", 5.0, 0.88),  # fastest but outside the budget
        _row("onnxruntime:int8", 12.0, 0.897),
    ]
    record = choose(config, rows, terms)
    assert record["chosen"] == "onnxruntime:int8" and record["outside_budget"] == ["openvino:int8"]
    assert "onnxruntime:int8 (configured: openvino:int8) is the fastest" in record["reason"]
    assert "outside the budget: openvino:int8 (pearson 0.88 vs fp32 0.9)" in record["reason"]


def test_int8_slower_than_fp32_on_this_cpu_is_not_deployed():
    """The AVX2-only EPYC case: int8 inside the budget but slower than OpenVINO fp32."""
    rows = [_row("torch:fp32", 50.0, 0.9), _row("openvino:fp32", 20.0, 0.9), _row("openvino:int8", 21.0, 0.9)]
    record = choose(parse_config(TINY), rows, parse_budget({"pearson": -0.005}))
    assert record["chosen"] == "openvino:fp32" and record["outside_budget"] == []


def test_select_engine_keeps_the_configured_variant_and_says_it_is_slower(caplog):
    rows = [_row("torch:fp32", 50.0, 0.9), _row("openvino:fp32", 20.0, 0.9), _row("openvino:int8", 21.0, 0.9)]
    with caplog.at_level(logging.WARNING, "efficientbioai"):
        record = choose(parse_config({**TINY, "deploy": {"select": "engine"}}), rows, parse_budget({"pearson": -0.005}))
    assert record["chosen"] == "openvino:int8" and "slower than openvino:fp32" in record["reason"]
    assert "slower than openvino:fp32" in caplog.text


def test_without_validation_data_only_fp32_variants_or_the_configured_one_are_eligible():
    rows = [_row("torch:fp32", 50.0, None), _row("openvino:fp32", 20.0, None), _row("onnxruntime:int8", 5.0, None)]
    config = parse_config({**TINY, "engine": {"name": "openvino", "precision": "fp32"}})
    record = choose(config, rows, parse_budget({"pearson": -0.005}))
    assert record["chosen"] == "openvino:fp32" and "no validation data" in record["reason"]


def test_compress_deploys_the_measured_choice_and_the_report_says_why(tiny_checkpoint, tmp_path, capsys):
    data = {**TINY, "model": {**TINY["model"], "checkpoint": str(tiny_checkpoint)}}
    data["report"] = {**TINY["report"], "compare": ["torch:fp32", "openvino:int8"]}
    data["data"] = {**TINY["data"], "validation": {"num_samples": 2, "shape": [64, 64]}}
    exp = tmp_path / "exp"
    assert main(["compress", "--config", str(write_config(tmp_path, data)), "--exp_path", str(exp)]) == 0
    record = json.loads((exp / "selection.json").read_text())
    rows = {r["variant"]: r for r in record["candidates"]}
    assert set(rows) == {"torch:fp32", "openvino:int8", "openvino:fp32"}  # the floor is always built
    assert all(r["scored_against"] == "ground truth" for r in rows.values())
    within = [v for v, r in rows.items() if r.get("budget", {"within": True})["within"]]
    fastest = min(within, key=lambda v: rows[v]["latency"]["median_ms"])
    assert record["chosen"] == fastest == load_config(exp / "deploy.yaml").deployed_variant
    assert rows[fastest]["latency"]["median_ms"] <= rows["openvino:fp32"]["latency"]["median_ms"]
    assert f"deploying {fastest}" in capsys.readouterr().out
    assert yaml.safe_load((exp / "deploy.yaml").read_text())["engine"]["name"] == fastest.split(":")[0]
    assert main(["infer", "--config", str(exp / "deploy.yaml")]) == 0
    report = json.loads((exp / "report.json").read_text())
    assert report["deployed"] == fastest and report["selection"]["reason"] == record["reason"]
    assert report["startup_s"] >= 0 and "One-time start-up" in (exp / "report.md").read_text()
    assert "Deployment: " + record["reason"] in (exp / "report.md").read_text()


def test_validation_stacks_are_not_the_evaluation_stacks():
    """Choosing on the data the report scores would grade the choice on its own exam."""
    config, task = _task(
        {
            "model": {"parser": "dilatedloc", "params": {"width": 8, "frames": 1}},
            "simulation": {"frame_shape": [16, 16], "test": {"frames": 4, "density_per_um2": [2.0, 2.0]}},
            "inference": {"task": "localize", "tile": [16, 16]},
        }
    )
    (evaluation,), (validation,) = list(task.samples()), list(task.validation_samples())
    assert evaluation.image.shape == validation.image.shape
    assert not (evaluation.image == validation.image).all()


def test_a_variant_this_machine_cannot_run_is_left_out_and_named():
    rows = [_row("torch:fp32", 50.0, 0.9), _row("openvino:fp32", 20.0, 0.9)]
    rows.append({"variant": "openvino:bf16", "precision": "bf16", "error": "Convolution node is not initialized"})
    record = choose(parse_config(TINY), rows, parse_budget({"pearson": -0.005}))
    assert record["chosen"] == "openvino:fp32"
    assert "Could not run here: openvino:bf16 (Convolution node is not initialized)" in record["reason"]
    bf16 = {"engine": {"name": "openvino", "precision": "bf16"}, "deploy": {"select": "engine"}}
    configured = parse_config({**TINY, **bf16})
    with pytest.raises(InputError, match="openvino:bf16 cannot run on this machine"):
        choose(configured, rows, parse_budget({"pearson": -0.005}))


def test_a_pruned_experiment_never_deploys_the_unpruned_reference():
    """Deep-STORM pruned by half: both pruned variants outside the NMSE budget. The configured
    pruned variant stays, and the reason and a warning say it is outside the budget."""
    rows = [
        _row("torch:fp32", 72.0, None),
        _row("openvino:fp32:pruned", 20.0, None),
        _row("openvino:int8:pruned", 12.0, None),
    ]
    for row, nmse in zip(rows, (9.5, 12.8, 12.5)):
        row["scores"] = {"nmse": nmse}
    config = parse_config({**TINY, "prune": {"enabled": True}})
    record = choose(config, rows, parse_budget({"nmse": 1.0}))
    assert record["chosen"] == "openvino:int8:pruned" == config.deployed_variant
    assert record["reason"].startswith("no candidate is within the budget (nmse +1)")
    assert "fastest variant" not in record["reason"]  # it is not within the budget


def test_infer_leaves_out_a_compared_variant_this_machine_cannot_run(tiny_checkpoint, tmp_path, monkeypatch, capsys):
    """A deploy.yaml taken to another CPU: a compared variant it cannot run is named and left
    out; the deployed one, or one asked for by --variants, is one error line."""
    infer_module = importlib.import_module("efficientbioai.api.infer")  # the package exports infer()
    data = {**TINY, "model": {**TINY["model"], "checkpoint": str(tiny_checkpoint)}}
    data["engine"], data["deploy"] = {"name": "openvino", "precision": "fp32"}, {"select": "engine"}
    data["report"] = {**TINY["report"], "compare": ["torch:fp32", "openvino:fp32", "openvino:int8"]}
    exp = tmp_path / "exp"
    assert main(["compress", "--config", str(write_config(tmp_path, data)), "--exp_path", str(exp)]) == 0
    real = infer_module.create_engine

    def create_engine(variant, config, parser):
        if variant in broken:
            raise RuntimeError(f"Exception from src/inference.cpp:\nCheck failed\n{variant} node is not initialized")
        return real(variant, config, parser)

    monkeypatch.setattr(infer_module, "create_engine", create_engine)
    broken, deploy = {"openvino:int8"}, str(exp / "deploy.yaml")
    assert main(["infer", "--config", deploy]) == 0
    report = json.loads((exp / "report.json").read_text())
    assert [r["variant"] for r in report["variants"]] == ["torch:fp32", "openvino:fp32"]
    assert report["skipped"] == {"openvino:int8": "openvino:int8 node is not initialized"}
    assert "openvino:int8 could not run on this machine" in (exp / "report.md").read_text()
    capsys.readouterr()
    assert main(["infer", "--config", deploy, "--variants", "openvino:int8"]) == 2
    assert "error: openvino:int8 cannot run on this machine" in capsys.readouterr().err
    broken = {"openvino:fp32"}
    assert main(["infer", "--config", deploy]) == 2
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert line.startswith("error: openvino:fp32 cannot run") and "run compress on this machine" in line
    assert "Traceback" not in err
