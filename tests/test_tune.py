"""``efficientbioai tune``: candidates in groups, all timed here round-robin and scored on the
validation split; the fastest within the budget deployed; the time budget and resuming."""

from __future__ import annotations

import json

import pytest

from efficientbioai.cli import main
from efficientbioai.config import load_config
from efficientbioai.errors import InputError
from efficientbioai.evaluation import tune as tune_module
from efficientbioai.evaluation.tune import parse_duration, tune
from tests.helpers import TINY, write_config


def _config(tmp_path, checkpoint):
    data = {**TINY, "model": {**TINY["model"], "checkpoint": str(checkpoint)}}
    data["data"] = {**TINY["data"], "validation": {"num_samples": 2, "shape": [64, 64]}}
    data["prune"] = {"fine_tune": {"steps": 4, "batch_size": 2}}
    return write_config(tmp_path, data)


@pytest.mark.parametrize("bad", ["0", "-3m", "soon", "5d"])
def test_a_bad_time_budget_is_refused(bad):
    with pytest.raises(InputError, match="--time"):
        parse_duration(bad)


def test_tune_builds_measures_and_deploys_the_fastest_within_budget(tiny_checkpoint, tmp_path, capsys):
    exp = tmp_path / "tuned"
    args = ["tune", "--config", str(_config(tmp_path, tiny_checkpoint)), "--exp_path", str(exp)]
    assert main(args + ["--prune-ratios", "0.5"]) == 0
    record = json.loads((exp / "tuning.json").read_text())
    assert set(record["groups"]["built"]) == {"engines", "keep-float", "pruned-0.5"}
    assert {"torch:fp32", "openvino:fp32", "openvino:bf16", "onnxruntime:int8"} <= {
        r["variant"] for r in record["candidates"]
    }
    rows = {r["variant"]: r for r in record["candidates"] if "error" not in r}  # bf16 cannot run under an AVX2 cap
    assert {"openvino:int8 [keep-float]", "openvino:int8:pruned [pruned-0.5]"} <= set(rows)
    within = [v for v, r in rows.items() if r.get("budget", {"within": True})["within"]]
    chosen = min(within, key=lambda v: rows[v]["latency"]["median_ms"])
    assert record["chosen"] == chosen
    deployed = load_config(exp / "deploy.yaml")
    assert deployed.deployed_variant == rows[chosen]["artefact_variant"]
    assert (exp / "tuning.png").stat().st_size > 10_000 and "budget (pearson -0.005)" in record["reason"]
    assert f"deployed: {chosen}\n" in capsys.readouterr().out
    assert main(["infer", "--config", str(exp / "deploy.yaml")]) == 0
    assert "tuning: every candidate" in (exp / "report.html").read_text()


def test_tune_resumes_and_keeps_to_its_time_budget(tiny_checkpoint, tmp_path, monkeypatch):
    config = _config(tmp_path, tiny_checkpoint)
    first = tune(config, tmp_path / "a", time_budget_s=1e-6, prune_ratios=())
    assert list(first["groups"]["built"]) == ["engines"] and first["groups"]["skipped_for_time"] == ["keep-float"]
    built = []
    real = tune_module.compress
    monkeypatch.setattr(tune_module, "compress", lambda c, p, **kw: built.append(p.name) or real(c, p, **kw))
    second = tune(config, tmp_path / "a", prune_ratios=(), overwrite=True)  # no time limit now
    assert built == ["keep-float"] and set(second["groups"]["built"]) == {"engines", "keep-float"}


def test_each_pruned_group_prunes_at_its_own_ratio_or_flops_reduction():
    """A config with prune.flops_reduction would otherwise turn every pruned-<r> group into the same one."""
    from efficientbioai.config import parse_config
    from efficientbioai.parsers.base import create_parser
    from efficientbioai.registry import TASKS

    config = parse_config({**TINY, "prune": {"enabled": True, "flops_reduction": 2.0}})
    task = TASKS.get("denoise")(config, create_parser(config))
    groups = tune_module.candidate_groups(config, task, [0.25, 0.5], [3.0])
    pruned = {n: (g.prune.ratio, g.prune.flops_reduction) for n, g in groups.items() if n.startswith("pruned")}
    # The config's own flops_reduction is a group of its own; the engines group does not prune.
    expected = {"pruned-0.25": (0.25, None), "pruned-0.5": (0.5, None), "pruned-3x": (0.5, 3.0)}
    assert pruned == {**expected, "pruned-2x": (0.5, 2.0)}
    assert not groups["engines"].prune.enabled and groups["pruned-2x"].prune.fine_tune == config.prune.fine_tune


def test_the_cli_passes_prune_flops_to_tune(monkeypatch):
    seen = {}

    def fake_tune(config, exp_path, seconds, ratios, overwrite, flops):
        seen.update(ratios=ratios, flops=flops)
        raise InputError("stop here")

    monkeypatch.setattr("efficientbioai.cli.tune", fake_tune)
    args = ["tune", "--config", "c.yaml", "--exp_path", "out", "--prune-ratios", "--prune-flops", "2", "4"]
    assert main(args) == 2
    assert seen == {"ratios": (), "flops": (2.0, 4.0)}
