"""Latency and energy measurement, done the same way for every engine.

Latency: warm-up runs first, the device synchronised after each call, median and p90 of many
timed runs, batch size and threads stated. Energy: CodeCarbon in offline mode (no network),
with the method it could use stated next to the figure — RAPL counters where the kernel exposes
them, otherwise an estimate from the CPU's TDP and its load (``TDP estimate``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import numpy as np

from efficientbioai.engines.base import BaseInfer

log = logging.getLogger(__name__)


@dataclass
class Latency:
    median_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    runs: int
    warmup: int
    batch_size: int

    def as_dict(self) -> dict:
        return asdict(self)


def measure_latency(engine: BaseInfer, x: np.ndarray, warmup: int = 5, runs: int = 30) -> Latency:
    """Time ``engine(x)``: ``warmup`` untimed calls, then ``runs`` timed ones (synchronised).

    Examples
    --------
    >>> from efficientbioai.engines.torch_engine import TorchModule
    >>> import torch
    >>> lat = measure_latency(TorchModule(torch.nn.Identity()), np.zeros((1, 1, 8, 8), np.float32), 1, 3)
    >>> lat.runs
    3
    """
    return round_robin_latency({"engine": engine}, x, warmup, runs)["engine"]


def round_robin_latency(engines: dict[str, BaseInfer], x: np.ndarray, warmup: int = 3, runs: int = 9) -> dict:
    """:func:`measure_latency` for several engines at once, their timed calls interleaved
    (one call of each per round), so a change of machine load or clock over the measurement
    touches every variant alike: the protocol for choosing between variants."""
    for engine in engines.values():
        engine.warmup(x, warmup)
        engine.sync()
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(runs):
        for name, engine in engines.items():
            times[name].append(_timed(engine, x))
    return {name: _summary(t, warmup, x) for name, t in times.items()}


def _timed(engine: BaseInfer, x: np.ndarray) -> float:
    start = time.perf_counter()
    engine(x)
    engine.sync()
    return (time.perf_counter() - start) * 1000


def _summary(times: list[float], warmup: int, x: np.ndarray) -> Latency:
    t = np.asarray(times)
    return Latency(
        median_ms=float(np.median(t)),
        p90_ms=float(np.percentile(t, 90)),
        mean_ms=float(t.mean()),
        min_ms=float(t.min()),
        runs=len(t),
        warmup=warmup,
        batch_size=int(x.shape[0]),
    )


def mean_scores(scores: list[dict[str, float]]) -> dict[str, float]:
    """Each metric averaged over samples (``{}`` for none)."""
    return {k: float(np.mean([s[k] for s in scores])) for k in scores[0]} if scores else {}


_METHODS = {
    "intel_rapl": "RAPL",
    "intel_power_gadget": "Intel Power Gadget",
    "cpu_load": "TDP estimate",
    "constant": "TDP estimate",
    "tdp": "TDP estimate",
}


class EnergyMeter:
    """Context manager measuring energy of the enclosed work with CodeCarbon (offline).

    After the block, ``kwh`` holds the energy (CPU + RAM [+ GPU]) and ``method`` how it was
    obtained. Without CodeCarbon, ``kwh`` is ``None`` and ``method`` says so.
    """

    def __init__(self, country_iso_code: str = "DEU", enabled: bool = True) -> None:
        self.country_iso_code = country_iso_code
        self.enabled = enabled
        self.kwh: float | None = None
        self.method = "not measured"
        self.seconds = 0.0
        self._tracker = None

    def __enter__(self) -> EnergyMeter:
        self._start = time.perf_counter()
        if not self.enabled:
            return self
        try:
            logging.getLogger("codecarbon").setLevel(logging.ERROR)
            from codecarbon import OfflineEmissionsTracker

            self._tracker = OfflineEmissionsTracker(
                country_iso_code=self.country_iso_code,
                save_to_file=False,
                log_level="error",
                measure_power_secs=1,
                tracking_mode="process",
                allow_multiple_runs=True,
            )
            self._tracker.start()
        except ImportError:
            self.method = "not measured (codecarbon not installed)"
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._start
        if self._tracker is None:
            return
        self._tracker.stop()
        data = self._tracker.final_emissions_data
        self.kwh = float(data.energy_consumed)
        modes = []
        for hw in getattr(self._tracker, "_hardware", []):
            name = type(hw).__name__
            if name == "CPU":
                modes.append(_METHODS.get(getattr(hw, "_mode", ""), str(getattr(hw, "_mode", "CPU"))))
            elif name == "GPU":
                modes.append("NVML")
        self.method = " + ".join(dict.fromkeys(modes)) or "unknown"

    def joules_per(self, count: int) -> float | None:
        return None if self.kwh is None or count == 0 else self.kwh * 3.6e6 / count
