"""Report files (``report.json``: everything measured; ``report.md``: the table to read) and
:class:`Report`, the same in Python. Ratios compare each variant with the ``torch:fp32``
reference measured in the same run.
"""

from __future__ import annotations

import io
from pathlib import Path

from efficientbioai.evaluation.roofline import achieved
from efficientbioai.manifest import ISA_FEATURES, write_atomic, write_json

REFERENCE = "torch:fp32"

COLUMNS = ["variant", "ms (median/p90)", "speed-up", "{unit}/s", "J/{one}", "energy saved", "MB"]


_PRETTY = {
    "pearson": "Pearson",
    "dice": "Dice",
    "jaccard": "Jaccard",
    "rmse_lateral": "RMSE xy nm",
    "rmse_axial": "RMSE z nm",
    "efficiency_3d": "Eff. 3D",
    "psnr": "PSNR dB",
    "nmse": "NMSE %",
    "ssim": "SSIM",
}


def _pretty(metric: str) -> str:
    return _PRETTY.get(metric, metric)


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def summary_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the comparison table (strings), shared by Markdown and the terminal."""
    metric = report["primary_metric"]
    rows = report["variants"]
    ref = next((r for r in rows if r["variant"] == REFERENCE), None)
    unit = report.get("unit", "images")
    truth_metrics = report.get("report_metrics", [metric])
    header = [c.format(unit=unit, one=unit.removesuffix("s")) for c in COLUMNS]
    pruned = bool(report.get("pruning"))
    if pruned:
        header.append("params")
    header += [_pretty(m) for m in truth_metrics] + [f"{_pretty(metric)} vs fp32"]
    table = []
    for r in rows:
        lat = r["latency"]
        speed = ref["latency"]["median_ms"] / lat["median_ms"] if ref else None
        saved = None
        if ref and ref["energy_kwh"] and r["energy_kwh"] is not None:
            saved = 100 * (1 - r["energy_kwh"] / ref["energy_kwh"])
        truth = r.get("vs_ground_truth", {})
        over = not r.get("budget", {}).get("within", True)
        table.append(
            [
                r["variant"] + (" ✗ outside budget" if over else ""),
                f"{lat['median_ms']:.1f} / {lat['p90_ms']:.1f}",
                _fmt(speed, ".2f") + ("×" if speed else ""),
                f"{r['units_per_s']:.2f}",
                _fmt(r["energy_j_per_unit"], ".2f"),
                _fmt(saved, ".0f") + ("%" if saved is not None else ""),
                f"{r['artefact_bytes'] / 1e6:.2f}",
                *([f"{r['parameters']:,}" if r.get("parameters") else "–"] if pruned else []),
                *(_fmt(truth.get(m), ".4f" if abs(truth.get(m) or 0) < 10 else ".1f") for m in truth_metrics),
                _fmt(r.get("vs_fp32", {}).get(metric), ".4f"),
            ]
        )
    return header, table


def describe_machine(m: dict) -> str:
    """``CPU (N cores; ISA: avx2, ...)``, with any ISA cap in force."""
    isa = ", ".join(m.get("isa", [])) or "none of " + "/".join(ISA_FEATURES)
    cap = "".join(f"; {k}={v}" for k, v in m.get("isa_cap", {}).items())
    return f"{m['cpu']} ({m['cores']} cores; ISA: {isa}{cap})"


def notes(report: dict) -> list[str]:
    """Lines stating how the numbers were measured."""
    rows = report["variants"]
    first = rows[0] if rows else {}
    lat = first.get("latency", {})
    model = report.get("model", {})
    out = [
        f"Task: {report['task']}; deployed variant: {report['deployed']}; "
        f"machine: {describe_machine(report['machine'])}.",
        f"Latency: a batch of {lat.get('batch_size')} tile(s) of {model.get('tile', [0, 0, '?'])[2:]}, "
        f"{lat.get('warmup')} warm-up + {lat.get('runs')} timed runs, median and p90; speed-up is "
        f"torch fp32 median ÷ variant median, measured in this run.",
        f"Throughput and energy: {first.get('units', float('nan')):g} whole {report.get('unit', 'images')} end to end "
        f"(tiling, pre- and post-processing included); energy by CodeCarbon, method: "
        f"{first.get('energy_method', '?')}.",
        f"One-time start-up of the task's own processing ({report.get('startup_s', 0):.1f} s: JIT compilation, "
        "imports) ran before any timing; each variant is warmed up at the tile size before it is timed.",
        f"Model: {model.get('parameters', 0):,} parameters, "
        f"{model.get('flops_per_tile', 0) / 1e9:.2f} GFLOPs per tile.",
        "Metric columns score against ground truth; 'vs fp32' against the torch fp32 output on the same input.",
    ]
    if report.get("task") == "denoise":
        out.append(
            "PSNR/SSIM after CARE's normalisation: target (ground truth or fp32 output) percentile-normalised "
            "(0.1–99.9 % → 0–1), prediction affinely fitted to it by least squares, data range 1; "
            "raw values (own units, the reference's max − min as range) as psnr_raw/ssim_raw in report.json."
        )
    skipped = report.get("skipped", {})
    out += [f"{v} could not run on this machine and is left out: {why}." for v, why in skipped.items()]
    out += achieved(report, report.get("roofline"))
    threads = {str(r["engine"].get("threads")) for r in rows}
    out.append(f"Threads: {', '.join(sorted(threads))}.")
    for r in rows:
        prec = r["engine"].get("inference_precision")
        if prec:
            out.append(f"{r['variant']}: OpenVINO inference precision reported by the plugin: {prec}.")
    return out


def pruning_lines(report: dict) -> list[str]:
    """What pruning removed and how fine-tuning went (Markdown), or nothing."""
    p = report.get("pruning")
    if not p:
        return []
    b, a = p["before"], p["after"]
    lines = [
        "## Pruning",
        "",
        f"- {p['library']}: {p['importance']} importance, {p['ratio']:.0%} of channels ({p['scope']}, "
        f"{p['iterative_steps']} step(s)); protected: {', '.join(p['protected']) or 'none'}.",
        f"- Parameters {b['parameters']:,} → {a['parameters']:,} ({a['parameters'] / b['parameters']:.0%}); "
        f"FLOPs per tile {b['flops_per_tile'] / 1e9:.2f} → {a['flops_per_tile'] / 1e9:.2f} G.",
    ]
    ft = p.get("fine_tune") or {}
    if ft.get("mode", "none") == "none":
        return lines + ["- No fine-tuning.", ""]
    lines.append(
        f"- Fine-tuning: {ft['mode']}, {ft.get('steps')} steps, lr {ft.get('lr')}, batch {ft.get('batch_size')}."
    )
    curve = ft.get("curve") or []
    if curve:
        keys = [k for k in curve[-1] if k != "step"]
        lines += ["", "| step | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
        for point in curve:
            cells = [
                _fmt(point.get(k), ".4g") if isinstance(point.get(k), float) else str(point.get(k, "–")) for k in keys
            ]
            lines.append(f"| {point['step']} | " + " | ".join(cells) + " |")
    return lines + [""]


def budget_lines(report: dict) -> list[str]:
    """The accuracy budget, the variants outside it, and why compress deployed what it did."""
    b = report.get("accuracy_budget") or {}
    lines = []
    if b.get("terms"):
        line = f"Accuracy budget (change vs fp32 allowed, scored against ground truth): {', '.join(b['terms'])}. "
        if not b["outside"]:
            lines.append(line + "Every variant scored is inside it.")
        else:
            deployed = " — including the deployed variant" if report.get("deployed") in b["outside"] else ""
            lines.append(line + f"**Outside it: {', '.join(b['outside'])}{deployed}.**")
    why = (report.get("selection") or {}).get("reason")
    if why:
        lines.append(f"Deployment: {why}")
    return lines + [""] if lines else []


def to_markdown(report: dict) -> str:
    header, table = summary_rows(report)
    lines = [
        "# EfficientBioAI report",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table]
    lines += [""] + [f"- {n}" for n in notes(report)] + [""]
    lines += budget_lines(report) + pruning_lines(report)
    return "\n".join(lines)


def write_report(report: dict, folder: Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into ``folder`` (atomically)."""
    return write_json(folder / "report.json", report), write_atomic(folder / "report.md", to_markdown(report))


class Report(dict):
    """``report.json`` as a dict, with its table and the files each variant wrote."""

    @property
    def deployed(self) -> str:
        return self["deployed"]

    def row(self, variant: str | None = None) -> dict:
        """Latency, throughput, energy and accuracy of one variant (default: the deployed one)."""
        variant = variant or self.deployed
        return next(r for r in self["variants"] if r["variant"] == variant)

    def outputs(self, variant: str | None = None) -> list[Path]:
        """The prediction files a variant wrote (``report.write_outputs`` chooses which variants)."""
        return [Path(p) for p in self.row(variant).get("outputs", [])]

    def print(self, file=None) -> None:
        """The comparison table (the deployed variant in bold) and how it was measured."""
        from rich.console import Console
        from rich.table import Table

        header, rows = summary_rows(self)
        table = Table(title=f"EfficientBioAI — {self['task']} ({self['experiment']})")
        for i, h in enumerate(header):
            table.add_column(h, justify="left" if i == 0 else "right", no_wrap=True)
        for row in rows:
            table.add_row(*row, style="bold" if row[0].split(" ")[0] == self.deployed else None)
        console = Console(file=file, width=max(170, Console().width))
        console.print(table)
        for line in notes(self):
            console.print(f"  {line}", style="dim", highlight=False)

    def table(self) -> str:
        """:meth:`print` as plain text."""
        out = io.StringIO()
        self.print(out)
        return out.getvalue()

    def __str__(self) -> str:
        return self.table()
