"""``Report``: what ``efficientbioai.infer`` returns — the comparison as a dict, readable as a table."""

from __future__ import annotations

from pathlib import Path

from efficientbioai.evaluation.report import notes, summary_rows


class Report(dict):
    """``report.json`` as a dict, with the terminal table and the files each variant wrote."""

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

    def table(self) -> str:
        """The comparison table and how it was measured, as plain text."""
        header, rows = summary_rows(self)
        widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
        lines = [
            "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
            for r in [header, *rows]
        ]
        return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:], *notes(self)])

    def __str__(self) -> str:
        return self.table()
