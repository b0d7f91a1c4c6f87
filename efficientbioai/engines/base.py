"""``BaseInfer``: one inference engine behind a numpy-in, numpy-out interface.

Every engine takes a float32 batch ``(N, C, *spatial)`` of any batch size and tile size the
artefact allows, returns the output array (or a dict of named arrays for multi-head models),
states its precision explicitly, and can run a stream of batches with several requests in
flight (:meth:`map_batches`). What the streaming runtime needs (``device_outputs``,
``keeps_outputs_on_device``, ``executor``, ``move_to``, ``release``) it asks the engine for,
never its class or its members.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from efficientbioai.errors import ArtefactError, ConfigError, InputError

#: ``on_output(meta, outputs)``: what an executor calls with each batch's device outputs.
OnOutput = Callable[[Any, list], None]


class BaseInfer(ABC):
    """An engine running one artefact at one precision."""

    name: str = ""
    #: Whether :meth:`device_outputs` leaves outputs on :attr:`device` (else they are on the host).
    keeps_outputs_on_device: bool = False

    def __init__(self, precision: str, threads: int | None = None) -> None:
        self.precision = precision
        self.threads = threads
        self.output_names: list[str] = ["output"]
        self.input_rank: int | None = None
        self.device: Any = "cpu"

    @abstractmethod
    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """Outputs for one batch, in ``output_names`` order; results are on the host."""

    def __call__(self, x: np.ndarray) -> np.ndarray | dict[str, np.ndarray]:
        return self._pack(self.run(self.prepare(x)))

    def _pack(self, outs: list[np.ndarray]) -> np.ndarray | dict[str, np.ndarray]:
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

    def device_outputs(self, x: np.ndarray) -> list[torch.Tensor]:
        """One batch's outputs as torch tensors, ready to read, on the engine's device where it has one."""
        return [torch.from_numpy(o) for o in self.run(self.prepare(x))]

    def executor(self, on_output: OnOutput, requests: int | None = None) -> SyncExecutor:
        """What streams batches through this engine; here one at a time (see :class:`SyncExecutor`)."""
        return SyncExecutor(self, on_output)

    def move_to(self, device: str) -> None:
        """Run on ``device`` from now on; engines placed by their own settings refuse."""
        raise ConfigError(
            f"runtime.workers[].device {device!r}: {self.name} engines are placed by engine settings "
            "(engine.tensorrt.device, OpenVINO device names), not moved"
        )

    def release(self) -> None:
        """Free what the engine holds; it is not used afterwards."""
        return None

    def prepare(self, x: np.ndarray) -> np.ndarray:
        """The batch as a contiguous float32 array, or an :class:`InputError` saying what is wrong."""
        if not isinstance(x, np.ndarray):
            raise InputError(f"{self.name}: expected a numpy array, got {type(x).__name__}")
        if self.input_rank is not None and x.ndim != self.input_rank:
            raise InputError(
                f"{self.name}: batch has {x.ndim} dims {x.shape}; the model takes {self.input_rank} "
                "(batch, channels, spatial...)"
            )
        return np.ascontiguousarray(x, dtype=np.float32)


class SyncExecutor:
    """Runs each batch when submitted and calls ``on_output`` right away.

    Several requests in flight then come from several workers (TensorRT: one execution
    context on its own CUDA stream each).
    """

    def __init__(self, engine: BaseInfer, on_output: OnOutput) -> None:
        self.engine, self.on_output = engine, on_output

    def submit(self, x: np.ndarray, meta: Any) -> None:
        self.on_output(meta, self.engine.device_outputs(x))

    def drain(self) -> None:
        """Nothing is ever in flight."""

    def close(self) -> None:
        """Nothing to stop."""


def require_file(path: Path, what: str) -> Path:
    """The artefact path, or an :class:`ArtefactError` that says how to make it."""
    path = Path(path)
    if not path.is_file():
        raise ArtefactError(f"{what} not found: {path}. Run compress.py again (or check deploy.yaml's artefacts).")
    return path
