"""Which accuracy budget applies to an experiment, and which variants of a report are outside it.

``deploy.budget`` when set; else, for configs written before it, ``report.max_accuracy_drop``
or the largest ``quantize.*.max_accuracy_drop`` (a drop of the primary metric, the user's stated
tolerance for every variant); else the task family's default (``Task.default_budget``).
"""

from __future__ import annotations

from efficientbioai.budget import BudgetTerm, check_budget, parse_budget
from efficientbioai.config import Config
from efficientbioai.tasks.base import Task

#: Metrics where lower is better; all others (Jaccard, Pearson, Dice, AP) improve upward.
LOWER_IS_BETTER = frozenset({"nmse", "rmse_lateral", "rmse_axial", "rmse_3d"})


def budget_terms(config: Config, task: Task) -> tuple[BudgetTerm, ...]:
    """The budget this experiment is held to (see the module docstring for the order)."""
    if config.deploy.budget is not None:
        return parse_budget(config.deploy.budget)
    drops = [q.max_accuracy_drop for q in (config.quantize.onnxruntime, config.quantize.openvino)]
    legacy = config.report.max_accuracy_drop or max((d for d in drops if d is not None), default=None)
    if legacy is not None:
        sign = 1 if task.primary_metric in LOWER_IS_BETTER else -1
        return (BudgetTerm(task.primary_metric, sign * legacy),)
    return parse_budget(task.default_budget)


def describe_budget(terms: tuple[BudgetTerm, ...]) -> str:
    """``jaccard -0.01, rmse_lateral +5%``."""
    return ", ".join(str(t) for t in terms)


def mark_budget(rows: list[dict], terms: tuple[BudgetTerm, ...], reference: str) -> list[str]:
    """Add ``row["budget"]`` (:func:`~efficientbioai.budget.check_budget`'s result) to every
    variant scored against ground truth; returns the variants outside the budget."""
    ref = next((r for r in rows if r["variant"] == reference), None)
    fp32 = (ref or {}).get("vs_ground_truth")
    outside = []
    for row in rows:
        scores = row.get("vs_ground_truth")
        if row is ref or fp32 is None or scores is None:
            continue
        row["budget"] = check_budget(terms, fp32, scores)
        if not row["budget"]["within"]:
            outside.append(row["variant"])
    return outside
