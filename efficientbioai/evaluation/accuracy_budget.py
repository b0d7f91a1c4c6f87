"""The accuracy budget: how much a compressed variant may lose against fp32, and who is outside it.

The budget is ``report.max_accuracy_drop`` or, unset, the largest ``max_accuracy_drop`` the
config gives a quantizer (the user's stated tolerance applies to every variant, not only to
the back end that enforces it). Each variant's drop is measured on the report's evaluation
data against ground truth, in the task's primary metric, in the direction that metric improves.
"""

from __future__ import annotations

from efficientbioai.config import Config

#: Metrics where lower is better; all others (Jaccard, Pearson, Dice, AP) improve upward.
LOWER_IS_BETTER = frozenset({"nmse", "rmse_lateral", "rmse_axial", "rmse_3d"})


def accuracy_budget(config: Config) -> float | None:
    """The largest allowed drop of the primary metric (None: no budget set)."""
    if config.report.max_accuracy_drop is not None:
        return config.report.max_accuracy_drop
    drops = [q.max_accuracy_drop for q in (config.quantize.onnxruntime, config.quantize.openvino)]
    drops = [d for d in drops if d is not None]
    return max(drops) if drops else None


def drop(metric: str, fp32: float, variant: float) -> float:
    """How much worse ``variant`` is than ``fp32`` (positive: worse).

    Examples
    --------
    >>> round(drop("pearson", 0.877, 0.751), 3), round(drop("nmse", 10.7, 11.4), 3)
    (0.126, 0.7)
    """
    return variant - fp32 if metric in LOWER_IS_BETTER else fp32 - variant


def mark_budget(rows: list[dict], metric: str, max_drop: float, reference: str) -> list[str]:
    """Add ``row["budget"] = {metric, max_drop, drop, within}`` to every compared variant with
    ground truth; returns the variants outside the budget."""
    ref = next((r for r in rows if r["variant"] == reference), None)
    fp32 = (ref or {}).get("vs_ground_truth", {}).get(metric)
    outside = []
    for row in rows:
        value = row.get("vs_ground_truth", {}).get(metric)
        if row is ref or fp32 is None or value is None:
            continue
        d = drop(metric, fp32, value)
        row["budget"] = {"metric": metric, "max_drop": max_drop, "drop": d, "within": d <= max_drop}
        if d > max_drop:
            outside.append(row["variant"])
    return outside
