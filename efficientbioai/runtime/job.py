"""``StreamJob``: the per-chunk pieces a task hands the runtime for one input.

The runtime owns the loop (read ahead, engines, ordering, writing, resume, Dask); a task owns
what happens to one chunk. Each piece runs where it is cheapest:

====================  ===================================================  ==========================
piece                 does                                                 runs in
====================  ===================================================  ==========================
:meth:`chunks`        cut the input (frames with a halo, blocks)           the driver, once
:meth:`load`          read, check, normalise one chunk                     prefetch thread/process,
                                                                           or a Dask worker
:meth:`batches`       network inputs of one chunk (windows, tiles)         engine worker
:meth:`postprocess`   one batch's raw outputs → a small result, on the     engine worker, right
                      engine's device where it has one                     after the engine
:meth:`merge`         a chunk's batch results → the chunk's result         engine worker
:meth:`sink`          where chunk results go (CSV, image, blocks)          the driver, in order
====================  ===================================================  ==========================

Jobs must pickle (their source pickles as a path), so a chunk can be loaded in another process
or run on a Dask worker that rebuilds the engine once.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from efficientbioai.engines.factory import create_engine
from efficientbioai.runtime.chunks import Block, Chunk
from efficientbioai.runtime.sink import Sink


class LockedCache(dict):
    """A dict and the lock that guards it, pickled empty: each process a job is sent to (a reader
    process, a Dask worker) builds its own."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def __reduce__(self) -> tuple:
        return LockedCache, ()


class StreamJob(ABC):
    """One input (a stack or a volume) as chunks for the streaming runtime."""

    #: What progress and throughput count (``frames``, ``blocks``).
    unit: str = "frames"

    def __init__(self, task: Any, name: str) -> None:
        self.task = task
        self.name = name
        #: Identifies this job on Dask workers, which cache its engine and state under it.
        self.key = uuid.uuid4().hex

    @abstractmethod
    def chunks(self) -> list[Chunk] | list[Block]:
        """The chunks, in output order."""

    @abstractmethod
    def load(self, chunk: Chunk | Block) -> Any:
        """Read and prepare one chunk's data (checked: NaN/Inf, shape)."""

    @abstractmethod
    def batches(self, chunk: Chunk | Block, data: Any) -> Sequence[tuple[np.ndarray, Any]]:
        """``(network input, info)`` for each batch of one chunk; ``info`` goes to :meth:`postprocess`."""

    @abstractmethod
    def postprocess(self, chunk: Chunk | Block, info: Any, outputs: list) -> Any:
        """One batch's engine outputs (torch tensors, on the device where the engine has one) → a result."""

    @abstractmethod
    def merge(self, chunk: Chunk | Block, parts: list) -> Any:
        """The results of a chunk's batches, in batch order → the chunk's result for the sink."""

    @abstractmethod
    def sink(self, folder: Path | None, collect: bool) -> Sink:
        """Where results go: a file in ``folder`` (None: memory only); ``collect`` also returns the output."""

    def fingerprint(self) -> dict:
        """What must be unchanged for a partial output to be resumed (input, chunking, settings)."""
        return {"job": type(self).__name__, "name": self.name}

    def units(self, chunk: Chunk | Block) -> int:
        """Units of :attr:`unit` in ``chunk`` (frames, or 1 block)."""
        return chunk.frames

    def raw_bytes(self, chunk: Chunk | Block) -> int:
        """Bytes of raw input data in ``chunk`` (for MB/s)."""
        return 0

    def total_units(self) -> float:
        """What the report counts for the whole input (``Task.count`` of the sample)."""
        return float(sum(self.units(c) for c in self.chunks()))

    def create_engine(self, variant: str, threads: int | None = None) -> Any:
        """The engine a Dask worker builds for this job (once per worker): the task's variant."""
        cfg = self.task.config.model_copy(deep=True)
        if threads:
            cfg.engine.threads = threads
        return create_engine(variant, cfg, self.task.parser)

    def release(self, chunk: Chunk | Block) -> None:  # noqa: B027  (most jobs keep no per-chunk state)
        """Forget per-chunk state (after an error or once merged)."""


def run_chunk(job: StreamJob, engine: Any, chunk: Any, data: Any, streams: int | None = None) -> Any:
    """One chunk through ``engine`` with several batches in flight; the chunk's merged result."""
    batches = job.batches(chunk, data)
    parts: list = [None] * len(batches)

    def on_output(meta: tuple[int, Any], outputs: list) -> None:
        part, info = meta
        parts[part] = job.postprocess(chunk, info, outputs)

    executor = engine.executor(on_output, streams)
    try:
        for part, (x, info) in enumerate(batches):
            executor.submit(x, (part, info))
        executor.drain()
    except BaseException:
        job.release(chunk)
        raise
    finally:
        executor.close()
    return job.merge(chunk, parts)


def run_in_memory(job: StreamJob, engine: Any) -> Any:
    """The whole job on this thread, chunk after chunk, collected in memory.

    This is what ``Task.predict`` returns for a streamed task: the same chunks, batches and
    on-device post-processing as a streamed run, without threads, files or resume."""
    chunks = job.chunks()
    sink = job.sink(None, collect=True)
    sink.start(job.fingerprint(), resume=False, total=len(chunks))
    try:
        for chunk in chunks:
            sink.write(chunk, run_chunk(job, engine, chunk, job.load(chunk)))
        return sink.finish()
    finally:
        sink.close()


def source_identity(source: Any) -> dict:
    """Fingerprint of an input: path, size and modification time, or a hash of sampled frames."""
    path = getattr(source, "path", None)
    shape = [int(s) for s in source.shape]
    if path is not None and os.path.exists(path):
        st = os.stat(path)
        return {"path": str(Path(path).resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "shape": shape}
    digest = hashlib.sha1()
    n = shape[0] if shape else 0
    for i in np.unique(np.linspace(0, max(n - 1, 0), num=min(n, 64)).astype(int)) if n else []:
        digest.update(np.ascontiguousarray(source[int(i)]).tobytes())
    return {"memory": digest.hexdigest(), "shape": shape}
