"""``BaseInfer``: one inference engine behind a numpy-in, numpy-out interface.

Every engine takes a float32 batch ``(N, C, *spatial)`` of any batch size and tile size the
artefact allows, returns the output array (or a dict of named arrays for multi-head models),
states its precision explicitly, and can run a stream of batches with several requests in
flight (:meth:`map_batches`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from efficientbioai.errors import ArtefactError, InputError


class BaseInfer(ABC):
    """An engine running one artefact at one precision."""

    name: str = ""

    def __init__(self, precision: str, threads: int | None = None) -> None:
        self.precision = precision
        self.threads = threads
        self.output_names: list[str] = ["output"]
        self.input_rank: int | None = None

    @abstractmethod
    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """Outputs for one batch, in ``output_names`` order; results are on the host."""

    def __call__(self, x: np.ndarray) -> np.ndarray | dict[str, np.ndarray]:
        outs = self.run(self._check(x))
        return outs[0] if len(outs) == 1 else dict(zip(self.output_names, outs))

    def map_batches(self, batches: Iterable[np.ndarray]) -> Iterator[np.ndarray | dict[str, np.ndarray]]:
        """Results for a stream of batches, in order. Engines with async queues override this."""
        for x in batches:
            yield self(x)

    def warmup(self, x: np.ndarray, runs: int = 3) -> None:
        """Run ``x`` a few times so lazy compilation and caches are done before timing."""
        for _ in range(runs):
            self(x)

    def sync(self) -> None:
        """Wait for queued device work (a no-op for CPU engines, whose calls return when done)."""
        return None

    def describe(self) -> dict:
        """What a report should state about how this engine ran."""
        return {"engine": self.name, "precision": self.precision, "threads": self.threads}

    def _check(self, x: np.ndarray) -> np.ndarray:
        if not isinstance(x, np.ndarray):
            raise InputError(f"{self.name}: expected a numpy array, got {type(x).__name__}")
        if self.input_rank is not None and x.ndim != self.input_rank:
            raise InputError(
                f"{self.name}: batch has {x.ndim} dims {x.shape}; the model takes {self.input_rank} "
                "(batch, channels, spatial...)"
            )
        return np.ascontiguousarray(x, dtype=np.float32)


def require_file(path: Path, what: str) -> Path:
    """The artefact path, or an :class:`ArtefactError` that says how to make it."""
    path = Path(path)
    if not path.is_file():
        raise ArtefactError(f"{what} not found: {path}. Run compress.py again (or check deploy.yaml's artefacts).")
    return path
