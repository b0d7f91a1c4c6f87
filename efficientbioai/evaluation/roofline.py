"""``efficientbioai machine``: this CPU's convolution ceilings per precision, measured once and cached.

A stack of four 3×3 convolutions — the bulk of every bundled model — runs in OpenVINO at
fp32, bf16 (where the CPU has it) and int8, at two widths; its FLOPs ÷ the median latency is
the precision's ceiling (GFLOP/s, the best width). Whether int8 can make a model faster is a
property of the CPU: without VNNI or AMX, OpenVINO's int8 convolutions run at its fp32 rate, and
only fewer FLOPs help. Ceilings are cached per CPU model, core count, ISA cap and OpenVINO/NNCF
version; reports read the cache (they never measure) and show each variant's achieved GFLOP/s
and its share of the ceiling.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn

from efficientbioai.engines.openvino_engine import OPVModule
from efficientbioai.errors import BackendUnavailableError
from efficientbioai.evaluation.measure import measure_latency
from efficientbioai.manifest import flop_count, library_versions, machine, write_json

log = logging.getLogger(__name__)

#: Channel widths of the probe, and its tile.
WIDTHS = (32, 128)
TILE = (96, 96)
#: int8 counts as helping when its ceiling is at least this multiple of fp32's.
HELPS = 1.2


def _probe(width: int) -> nn.Module:
    torch.manual_seed(0)
    layers = [m for _ in range(4) for m in (nn.Conv2d(width, width, 3, padding=1), nn.ReLU())]
    return nn.Sequential(*layers).eval()


def cache_file(m: dict | None = None) -> Path:
    """Where this machine's ceilings are kept (``EFFICIENTBIOAI_CACHE`` or ``~/.cache/efficientbioai``)."""
    m = m or machine()
    versions = library_versions()
    key = json.dumps([m["cpu"], m["cores"], m.get("isa_cap"), versions.get("openvino"), versions.get("nncf")])
    root = Path(os.environ.get("EFFICIENTBIOAI_CACHE", Path.home() / ".cache" / "efficientbioai"))
    return root / f"roofline-{hashlib.sha1(key.encode()).hexdigest()[:12]}.json"


def measure_ceilings(widths: tuple[int, ...] = WIDTHS, tile: tuple[int, int] = TILE, runs: int = 15) -> dict:
    """Time the probe at each width and precision; the ceiling is the best GFLOP/s."""
    import nncf
    import openvino as ov

    per_width = []
    with tempfile.TemporaryDirectory(prefix="efficientbioai_roofline_") as tmp:
        for width in widths:
            model, x = _probe(width), torch.rand(1, width, *tile)
            flops = flop_count(model, x)
            fp32 = Path(tmp) / f"w{width}_fp32.xml"
            ov_model = ov.convert_model(model, example_input=x)
            ov_model.inputs[0].get_tensor().set_names({"input"})
            ov_model.outputs[0].get_tensor().set_names({"output"})
            ov.save_model(ov_model, fp32)
            int8 = Path(tmp) / f"w{width}_int8.xml"
            ov.save_model(nncf.quantize(ov_model, nncf.Dataset([x.numpy()] * 4), subset_size=4), int8)
            row = {"width": width, "gflop": flops / 1e9}
            for precision, path in (("fp32", fp32), ("bf16", fp32), ("int8", int8)):
                try:
                    engine = OPVModule(path, precision)
                except BackendUnavailableError as exc:  # no bf16 kernels, or capped away (ONEDNN_MAX_CPU_ISA)
                    log.info("bf16 is not usable here (%s); measured fp32 and int8 only", exc)
                    continue
                latency = measure_latency(engine, x.numpy(), warmup=3, runs=runs)
                row[precision] = flops / (latency.median_ms / 1e3) / 1e9
                del engine
            per_width.append(row)
    ceilings = {
        p: max(r[p] for r in per_width if p in r) for p in ("fp32", "bf16", "int8") if any(p in r for r in per_width)
    }
    return {
        "ceilings_gflops": {p: round(v, 2) for p, v in ceilings.items()},
        "per_width": per_width,
        "machine": machine(),
        "versions": {k: library_versions().get(k) for k in ("openvino", "nncf")},
        "method": f"OpenVINO, 4 stacked 3x3 convolutions at widths {list(widths)}, tile {list(tile)}, batch 1, "
        f"median of {runs} runs after 3 warm-up; 2 FLOPs per multiply-add",
        "measured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def ceilings(refresh: bool = False, **kwargs) -> dict:
    """The cached ceilings of this machine, measuring them first when absent (or ``refresh``).

    A ceiling is a peak: a busier machine measures lower, never higher. So a refresh keeps, per
    precision, the higher of the cached and the new value, and a low first measurement on a
    shared machine is raised by the next one instead of being replaced by chance."""
    path = cache_file()
    cached = cached_ceilings(path)
    if cached and not refresh:
        return cached
    log.info("measuring this CPU's convolution ceilings (OpenVINO fp32/bf16/int8; about a minute)")
    result = measure_ceilings(**kwargs)
    if cached:
        old = cached["ceilings_gflops"]
        result["ceilings_gflops"] = {p: max(v, old.get(p, 0.0)) for p, v in result["ceilings_gflops"].items()}
        result["measurements"] = cached.get("measurements", 1) + 1
        result["method"] += f"; each ceiling the highest of {result['measurements']} measurements (per_width: the last)"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, result)
    return result


def cached_ceilings(path: Path | None = None) -> dict | None:
    """The ceilings if this machine has measured them (``efficientbioai machine``); never measures."""
    path = path or cache_file()
    return json.loads(path.read_text()) if path.is_file() else None


def ceiling_key(precision: str) -> str:
    """The ceiling a precision is held to: ``int8-bf16``'s convolutions are int8 ones."""
    return "int8" if precision.startswith("int8") else "bf16" if precision == "bf16" else "fp32"


def verdict(result: dict) -> str:
    """Whether int8 can make a model faster here, in one sentence."""
    c = result["ceilings_gflops"]
    ratio = c.get("int8", 0.0) / c["fp32"]
    if ratio < HELPS:
        return (
            f"int8 convolutions run at {ratio:.2f}× the fp32 rate on this CPU (no VNNI/AMX int8 path in use): "
            "int8 cannot make a model faster here, only fewer FLOPs (pruning) can"
        )
    return f"int8 convolutions run at {ratio:.1f}× the fp32 rate on this CPU: int8 can help"


def achieved(report: dict, roofline: dict | None) -> list[str]:
    """Each variant's achieved GFLOP/s (model FLOPs per tile × batch ÷ median latency), and its
    share of the ceiling of its precision when this machine's ceilings are known."""
    flops = report.get("model", {}).get("flops_per_tile")
    if not flops:
        return []
    c = (roofline or {}).get("ceilings_gflops", {})
    parts, above = [], []
    for r in report["variants"]:
        if r["variant"].endswith(":pruned"):
            continue  # fewer FLOPs than the model's; not counted here
        lat = r["latency"]
        gflops = flops * lat.get("batch_size", 1) / (lat["median_ms"] / 1e3) / 1e9
        precision = r["variant"].split(":")[1]
        ceiling = c.get(ceiling_key(precision))
        parts.append(f"{r['variant']} {gflops:.1f}" + (f" ({100 * gflops / ceiling:.0f} %)" if ceiling else ""))
        if ceiling and gflops > 1.1 * ceiling:
            above.append(r["variant"])
    line = "Achieved GFLOP/s" + (" (share of this CPU's ceiling for the precision)" if c else "") + ": "
    out = [line + ", ".join(parts) + "."]
    if c:
        out.append(
            "Ceilings (efficientbioai machine): "
            + ", ".join(f"{p} {v:.0f}" for p, v in c.items())
            + f" GFLOP/s; {verdict(roofline)}."
        )
    if above:  # a single cached measurement on a shared machine can be far too low
        out.append(
            f"{', '.join(above)} ran above the cached ceiling: it was measured on a busier machine; "
            "run `efficientbioai machine --refresh` on an idle one."
        )
    elif not c:
        out.append("Run `efficientbioai machine` once to measure this CPU's ceilings and see the share of them.")
    return out
