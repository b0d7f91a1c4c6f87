"""Progress of a streamed input: a bar (frames/s, ETA, MB/s) and the numbers it ends with."""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import asdict, dataclass

from efficientbioai.terminal import bar


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports kB)."""
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6


@dataclass
class StreamStats:
    """What one streamed input cost: units and raw bytes processed in this run, and the time."""

    units: float
    unit: str
    raw_bytes: int
    seconds: float
    chunks: int
    resumed_chunks: int
    peak_rss_mb: float

    @property
    def units_per_s(self) -> float:
        return self.units / self.seconds if self.seconds > 0 else float("nan")

    @property
    def mb_per_s(self) -> float:
        return self.raw_bytes / 1e6 / self.seconds if self.seconds > 0 else float("nan")

    def as_dict(self) -> dict:
        return {**asdict(self), "units_per_s": self.units_per_s, "mb_per_s": self.mb_per_s}

    def __str__(self) -> str:
        return (
            f"{self.units:.0f} {self.unit} in {self.seconds:.1f} s — {self.units_per_s:.1f} {self.unit}/s, "
            f"{self.mb_per_s:.2f} MB/s raw, peak RSS {self.peak_rss_mb:.0f} MB"
            + (f" ({self.resumed_chunks} chunks resumed)" if self.resumed_chunks else "")
        )


class Progress:
    """A progress bar in job units, shown on terminals only (``enabled`` and stderr a TTY)."""

    def __init__(self, total: float, initial: float, unit: str, desc: str, enabled: bool = True) -> None:
        self.unit = unit
        self.start = time.perf_counter()
        self.units = 0.0
        self.raw_bytes = 0
        self.chunks = 0
        self.bar = bar(
            total=total,
            initial=initial,
            unit=unit.rstrip("s") or unit,
            desc=desc,
            leave=False,
            smoothing=0.1,
            disable=None if enabled else True,  # None: only on a terminal
        )

    def update(self, units: float, raw_bytes: int) -> None:
        self.units += units
        self.raw_bytes += raw_bytes
        self.chunks += 1
        self.bar.update(units)
        seconds = time.perf_counter() - self.start
        if raw_bytes and seconds > 0:
            self.bar.set_postfix_str(f"{self.raw_bytes / 1e6 / seconds:.1f} MB/s", refresh=False)

    def close(self, resumed_chunks: int = 0) -> StreamStats:
        self.bar.close()
        return StreamStats(
            units=self.units,
            unit=self.unit,
            raw_bytes=self.raw_bytes,
            seconds=time.perf_counter() - self.start,
            chunks=self.chunks,
            resumed_chunks=resumed_chunks,
            peak_rss_mb=peak_rss_mb(),
        )
