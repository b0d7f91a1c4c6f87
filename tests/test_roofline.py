"""``efficientbioai machine``: ceilings per precision, cached per machine; reports show the share of them."""

from __future__ import annotations

import json

import pytest

from efficientbioai.cli import main
from efficientbioai.evaluation import roofline


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFICIENTBIOAI_CACHE", str(tmp_path))
    monkeypatch.setattr(roofline, "WIDTHS", (8,))  # a tiny probe: this checks the plumbing, not the CPU
    monkeypatch.setattr(roofline, "TILE", (24, 24))
    return tmp_path


def test_ceilings_are_measured_once_and_cached(cache, monkeypatch, capsys):
    small = {"widths": (8,), "tile": (24, 24), "runs": 3}
    first = roofline.ceilings(**small)
    assert {"fp32", "int8"} <= set(first["ceilings_gflops"]) and all(v > 0 for v in first["ceilings_gflops"].values())
    assert roofline.cache_file().parent == cache and roofline.cached_ceilings() == first

    def never(**kwargs):
        raise AssertionError("measured again although cached")

    monkeypatch.setattr(roofline, "measure_ceilings", never)
    assert roofline.ceilings() == first
    assert main(["machine"]) == 0
    out = capsys.readouterr().out
    assert "fp32" in out and "int8" in out and "ISA:" in out and "int8" in roofline.verdict(first)


def test_the_verdict_says_when_int8_cannot_help():
    flat = {"ceilings_gflops": {"fp32": 70.0, "int8": 72.0}}
    assert "int8 cannot make a model faster here" in roofline.verdict(flat)
    assert "int8 can help" in roofline.verdict({"ceilings_gflops": {"fp32": 70.0, "int8": 700.0}})


def test_reports_show_achieved_gflops_and_the_share_of_the_ceiling(tiny_report):
    report = json.loads(json.dumps(tiny_report))
    flops = report["model"]["flops_per_tile"]
    lines = roofline.achieved(report, {"ceilings_gflops": {"fp32": 100.0, "int8": 100.0}})
    row = report["variants"][0]
    gflops = flops * row["latency"]["batch_size"] / (row["latency"]["median_ms"] / 1e3) / 1e9
    assert f"{row['variant']} {gflops:.1f} ({gflops:.0f} %)" in lines[0]
    assert "int8 cannot make a model faster here" in lines[1]
    assert len(lines) == 2  # with ceilings known, no advice to measure them
    assert "efficientbioai machine" in roofline.achieved(report, None)[1]  # no ceilings yet: how to get them


def test_a_variant_above_the_cached_ceiling_asks_for_a_fresh_measurement(tiny_report):
    report = json.loads(json.dumps(tiny_report))
    fast = roofline.achieved(report, {"ceilings_gflops": {"fp32": 1e-6, "int8": 1e-6}})
    assert "ran above the cached ceiling" in fast[-1] and "--refresh" in fast[-1]
    slow = roofline.achieved(report, {"ceilings_gflops": {"fp32": 1e9, "int8": 1e9}})
    assert not any("above the cached ceiling" in line for line in slow)


def test_a_refresh_keeps_the_higher_ceiling(cache, monkeypatch):
    """A measurement on a busy machine is low; it must not replace a better one by chance."""
    runs = iter([{"fp32": 100.0, "int8": 900.0}, {"fp32": 180.0, "int8": 500.0}])

    def measured(**kwargs):
        return {"ceilings_gflops": next(runs), "per_width": [], "machine": {}, "method": "fake"}

    monkeypatch.setattr(roofline, "measure_ceilings", measured)
    assert roofline.ceilings()["ceilings_gflops"] == {"fp32": 100.0, "int8": 900.0}
    again = roofline.ceilings(refresh=True)
    assert again["ceilings_gflops"] == {"fp32": 180.0, "int8": 900.0} and again["measurements"] == 2
    assert roofline.cached_ceilings() == again
