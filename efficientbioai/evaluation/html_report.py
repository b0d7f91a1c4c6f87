"""``report.html``: the comparison a person looks at — one self-contained file, every figure also a PNG.

It holds the table, a speed-vs-accuracy plot of the variants, each variant's output beside the
input (a crop of the first sample: denoised image, mask, SR rendering), the task's own figures
(the SMLM RMSE-vs-CRLB plot) and the machine. Images are embedded as data URIs: the page needs
no network and no other file. A small inline script counts the figures the browser decoded
(``data-rendered`` on ``<body>``), so a headless browser can check the page.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

from efficientbioai.budget import BudgetTerm
from efficientbioai.evaluation.report import REFERENCE, budget_lines, describe_machine, notes, summary_rows
from efficientbioai.manifest import write_atomic

#: Side of the crop shown per variant (pixels of the preview image).
CROP = 256


def pyplot():
    """matplotlib's pyplot on the Agg backend (files only, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def speed_accuracy_png(report: dict, path: Path) -> Path:
    """Latency (median, log scale) against the primary metric, one point per variant; the
    budget's worst allowed value as a line; the deployed variant circled."""
    metric = report["primary_metric"]
    rows = report["variants"]
    truth = all(metric in r.get("vs_ground_truth", {}) for r in rows)
    key = "vs_ground_truth" if truth else "vs_fp32"
    points = [(r["variant"], r["latency"]["median_ms"], r.get(key, {}).get(metric)) for r in rows]
    ref = next((r for r in rows if r["variant"] == REFERENCE), None)
    limit = None
    for term in report.get("accuracy_budget", {}).get("terms", []):
        name, change = term.split(" ", 1)
        if truth and ref and name == metric:
            limit = (BudgetTerm.parse(name, change).limit(ref[key][metric]), f"budget: {change}")
    label = f"{metric} {'vs ground truth' if truth else 'vs torch fp32'}"
    title = f"{report['task']}: speed and accuracy of each variant"
    return pareto_png(points, label, limit, report["deployed"], title, path)


def pareto_png(
    points: list[tuple[str, float, float | None]],
    metric_label: str,
    limit: tuple[float, str] | None,
    chosen: str,
    title: str,
    path: Path,
) -> Path:
    """``(label, latency ms, metric)`` points on a log latency axis, the budget's worst allowed
    value as a dashed line (``(value, legend)``), the chosen point circled: the report's plot and
    the tuning's Pareto plot."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    for i, (name, x, y) in enumerate(points):
        if y is None:
            continue
        picked = name == chosen
        ax.scatter(x, y, s=90 if picked else 40, edgecolors="black" if picked else "none", zorder=3)
        # labels alternate above and below: variants with equal accuracy (fp32 engines) sit close together
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 5 if i % 2 else -11), fontsize=8)
    if limit is not None:
        ax.axhline(limit[0], color="gray", ls="--", lw=1, label=limit[1])
        ax.legend(fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("latency per batch, median (ms)")
    ax.set_ylabel(metric_label)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _crop(image: np.ndarray) -> np.ndarray:
    h, w = image.shape
    top, left = max(0, (h - CROP) // 2), max(0, (w - CROP) // 2)
    return image[top : top + CROP, left : left + CROP]


def outputs_png(previews: dict[str, np.ndarray], kind: str, path: Path) -> Path:
    """The input and each variant's output side by side, the same crop and contrast for all."""
    plt = pyplot()
    names = list(previews)
    fig, axes = plt.subplots(1, len(names), figsize=(2.6 * len(names), 2.9), dpi=110, squeeze=False)
    shown = {n: _crop(np.asarray(previews[n], np.float32)) for n in names}
    outs = [v for n, v in shown.items() if n != "input"]
    lo, hi = np.percentile(np.concatenate([o.ravel() for o in outs]), [0.5, 99.5]) if outs else (0, 1)
    for ax, name in zip(axes[0], names):
        image = shown[name]
        if name == "input":
            ax.imshow(image, cmap="gray", vmin=np.percentile(image, 0.5), vmax=np.percentile(image, 99.5))
        elif kind == "labels":
            ax.imshow(shown.get("input", np.zeros_like(image)), cmap="gray")
            ax.imshow(np.ma.masked_equal(image, 0), cmap="tab20", alpha=0.55, interpolation="nearest")
        else:
            ax.imshow(image, cmap="magma" if kind == "density" else "gray", vmin=lo, vmax=max(hi, lo + 1e-6))
        ax.set_title(name, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _img(path: Path, caption: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return (
        f'<figure><img class="figure" alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(caption)} (<code>{html.escape(Path(path).name)}</code>)</figcaption></figure>"
    )


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}tr.deployed{font-weight:bold;background:#eef6ee}
figure{display:inline-block;margin:1em 1em 1em 0}img.figure{max-width:100%;border:1px solid #ddd}
figcaption{font-size:12px;color:#555}.notes{font-size:12px;color:#555}code{font-size:12px}
"""

_COUNT = (
    "<script>window.addEventListener('load',function(){var n=0;document.querySelectorAll('img.figure')"
    ".forEach(function(i){if(i.complete&&i.naturalWidth>0)n++;});document.body.dataset.rendered=n;});</script>"
)


def write_html_report(report: dict, folder: Path, previews: dict[str, np.ndarray], kind: str) -> Path:
    """Write the figures as PNGs and ``report.html`` (atomically) into ``folder``; returns the page."""
    folder = Path(folder)
    figures = [(speed_accuracy_png(report, folder / "report_speed_accuracy.png"), "speed vs accuracy")]
    if len(previews) > 1:
        figures.append((outputs_png(previews, kind, folder / "report_outputs.png"), "outputs side by side"))
    if (folder / "tuning.png").is_file():  # efficientbioai tune's Pareto plot
        figures.append((folder / "tuning.png", "tuning: every candidate on this machine"))
    deployed_extras = next((r.get("extras", {}) for r in report["variants"] if r["variant"] == report["deployed"]), {})
    for name, value in deployed_extras.items():
        if isinstance(value, str) and value.endswith(".png") and Path(value).is_file():
            figures.append((Path(value), name.replace("_", " ")))
    header, rows = summary_rows(report)
    table = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
    for row in rows:
        style = ' class="deployed"' if row[0].split(" ")[0] == report["deployed"] else ""
        table += f"<tr{style}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
    machine = report.get("machine", {})
    versions = ", ".join(f"{k} {v}" for k, v in report.get("versions", {}).items())
    lines = [n for n in notes(report) + budget_lines(report) if n]
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>EfficientBioAI — {html.escape(report['task'])}</title>"
        f"<style>{_STYLE}</style></head><body data-figures='{len(figures)}'>"
        f"<h1>EfficientBioAI — {html.escape(report['task'])}</h1>"
        f"<p>Experiment <code>{html.escape(report['experiment'])}</code>; deployed variant "
        f"<b>{html.escape(report['deployed'])}</b>.</p><h2>Comparison</h2><table>{table}</table>"
        "<div class='notes'>" + "".join(f"<p>{html.escape(n)}</p>" for n in lines) + "</div>"
        "<h2>Figures</h2>" + "".join(_img(p, c) for p, c in figures) + "<h2>Machine</h2>"
        f"<p>{html.escape(describe_machine(machine)) if machine else 'not recorded'}</p>"
        f"<p class='notes'>{html.escape(versions)}</p>{_COUNT}</body></html>"
    )
    return write_atomic(folder / "report.html", page)
