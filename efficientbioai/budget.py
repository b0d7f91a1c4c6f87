"""The accuracy budget: how far each metric of a compressed variant may move from fp32.

A budget maps metrics to the largest allowed change against the fp32 original, signed in the
direction that hurts: ``jaccard: -0.01`` (may fall by at most 0.01), ``rmse_lateral: "+5%"``
(may rise by at most 5 % of its fp32 value), ``nmse: +1`` (by at most one point). Configs give
it as ``deploy.budget``; each task family has a default (``Task.default_budget``).

Examples
--------
>>> terms = parse_budget({"jaccard": -0.01, "rmse_lateral": "+5%"})
>>> [str(t) for t in terms]
['jaccard -0.01', 'rmse_lateral +5%']
>>> check_budget(terms, {"jaccard": 0.80, "rmse_lateral": 30.0}, {"jaccard": 0.795, "rmse_lateral": 31.0})["within"]
True
>>> check_budget(terms, {"jaccard": 0.80, "rmse_lateral": 30.0}, {"jaccard": 0.78, "rmse_lateral": 31.0})["within"]
False
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class BudgetTerm:
    """One metric's allowed change: ``change < 0`` the metric may fall by at most ``-change``,
    ``change > 0`` rise by at most ``change``; ``relative``: in percent of the fp32 value."""

    metric: str
    change: float
    relative: bool = False

    @classmethod
    def parse(cls, metric: str, value: float | str) -> BudgetTerm:
        text = str(value).strip()
        relative = text.endswith("%")
        try:
            change = float(text.removesuffix("%"))
        except ValueError:
            raise ValueError(f"budget {metric}: {value!r} is not a number or a percentage like '+5%'") from None
        if change == 0 or not math.isfinite(change):
            raise ValueError(
                f"budget {metric}: {value!r} must be a signed, non-zero change, e.g. -0.01 (may fall by 0.01) "
                "or '+5%' (may rise by 5 %)"
            )
        return cls(metric, change, relative)

    def limit(self, fp32: float) -> float:
        """The worst value a variant may reach when fp32 scores ``fp32``."""
        return fp32 + (self.change * abs(fp32) / 100 if self.relative else self.change)

    def within(self, fp32: float, value: float) -> bool:
        if not math.isfinite(value):
            return False
        return value >= self.limit(fp32) if self.change < 0 else value <= self.limit(fp32)

    def __str__(self) -> str:
        return f"{self.metric} {self.change:+g}{'%' if self.relative else ''}"


def parse_budget(spec: Mapping[str, float | str]) -> tuple[BudgetTerm, ...]:
    """The terms of a ``{metric: change}`` mapping (ValueError naming a bad entry)."""
    if not spec:
        raise ValueError("budget is empty; give at least one metric, e.g. {pearson: -0.005}")
    return tuple(BudgetTerm.parse(m, v) for m, v in spec.items())


def check_budget(terms: tuple[BudgetTerm, ...], fp32: Mapping[str, float], variant: Mapping[str, float]) -> dict:
    """``{"within": bool, "terms": [{metric, budget, fp32, value, limit, within}]}``; a metric
    missing from either score, or not finite for the variant, is outside."""
    rows = []
    for t in terms:
        ref, value = fp32.get(t.metric), variant.get(t.metric)
        ok = ref is not None and value is not None and math.isfinite(ref) and t.within(ref, value)
        rows.append(
            {
                "metric": t.metric,
                "budget": str(t).split(" ", 1)[1],
                "fp32": ref,
                "value": value,
                "limit": None if ref is None else t.limit(ref),
                "within": bool(ok),
            }
        )
    return {"within": all(r["within"] for r in rows), "terms": rows}
