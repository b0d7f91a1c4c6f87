"""``Pipeline``: one input streamed through engine workers on this machine.

    reader ─► prefetch (thread/process, bounded) ─► workers (one engine each: batches in flight,
    post-processing on the device) ─► driver (reorders by chunk, writes, journals, progress)

The driver (the calling thread) only reorders and writes, and it never waits without a
timeout: a failed chunk raises :class:`ChunkError` naming it, workers that die without a word
raise too, and Ctrl-C (``KeyboardInterrupt``) stops every thread, keeps the finished chunks
in the partial output for ``resume`` and re-raises.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from efficientbioai.engines.base import BaseInfer
from efficientbioai.errors import ChunkError, EfficientBioAIError
from efficientbioai.runtime.job import StreamJob
from efficientbioai.runtime.prefetch import POLL, Prefetcher
from efficientbioai.runtime.progress import Progress, StreamStats
from efficientbioai.runtime.settings import RuntimeSection
from efficientbioai.runtime.sink import Sink
from efficientbioai.runtime.workers import Worker


def chunk_error(chunk: Any, exc: BaseException, where: str | None = None, also: list = ()) -> EfficientBioAIError:
    """An error naming the chunk (and ``also`` the chunks lost with it) and the stage
    (``exc.stage``: reading, an engine worker, ...).

    Input problems stay :class:`InputError` (the user fixes the file); anything else becomes a
    :class:`ChunkError`.
    """
    if isinstance(exc, ChunkError):
        return exc
    what = ", ".join(c.describe() for c in [chunk, *also]) if chunk is not None else "before the first chunk"
    where = where or getattr(exc, "stage", "an engine worker")
    kind = type(exc) if isinstance(exc, EfficientBioAIError) else ChunkError
    err = kind(f"{what} failed in {where}: {type(exc).__name__}: {exc}")
    err.__cause__ = exc
    return err


class OrderedWriter:
    """Opens ``sink`` (resuming when asked) and a progress bar, then writes chunk results in chunk
    order, whatever order they arrive in (the local pipeline's and the Dask driver's)."""

    def __init__(self, job: StreamJob, sink: Sink, settings: RuntimeSection, fingerprint: dict, label: str = ""):
        self.job, self.sink = job, sink
        self.chunks = job.chunks()
        self.done = self.next = sink.start(fingerprint, settings.resume, len(self.chunks))
        units = [job.units(c) for c in self.chunks]
        self.progress = Progress(sum(units), sum(units[: self.done]), job.unit, label or job.name, settings.progress)
        self.buffered: dict[int, Any] = {}

    @property
    def complete(self) -> bool:
        return self.next >= len(self.chunks)

    def add(self, chunk: Any, result: Any, written: Callable[[], Any] = lambda: None) -> None:
        """Keep ``result`` until the chunks before it are written, then write all that are in order
        (calling ``written()`` after each)."""
        self.buffered[chunk.index] = result
        while self.next in self.buffered:
            current = self.chunks[self.next]
            self.sink.write(current, self.buffered.pop(self.next))
            written()
            self.progress.update(self.job.units(current), self.job.raw_bytes(current))
            self.next += 1

    def close(self) -> StreamStats:
        return self.progress.close(resumed_chunks=self.done)


class Pipeline:
    """Streams a :class:`StreamJob` through ``engines`` and writes it to a :class:`Sink`.

    Parameters
    ----------
    settings : RuntimeSection
        Read-ahead depth, reader mode, resume, progress.
    engines : list of (BaseInfer, streams)
        One worker per engine (``streams``: requests in flight, OpenVINO).
    label : str
        Progress bar description.
    """

    def __init__(self, settings: RuntimeSection, engines: list[tuple[BaseInfer, int | None]], label: str = "") -> None:
        if not engines:
            raise ValueError("a pipeline needs at least one engine")
        self.settings, self.engines, self.label = settings, engines, label
        self.stats: StreamStats | None = None

    def run(self, job: StreamJob, sink: Sink, fingerprint: dict | None = None) -> Any:
        """Stream ``job`` into ``sink``; returns ``sink.finish()``."""
        writer = OrderedWriter(job, sink, self.settings, fingerprint or job.fingerprint(), self.label)
        if writer.complete:
            self.stats = writer.close()
            return sink.finish()
        results: queue.Queue = queue.Queue()
        stop = threading.Event()
        tickets = threading.Semaphore(self.settings.prefetch + 2 * len(self.engines))
        todo = writer.chunks[writer.done :]
        prefetch = Prefetcher(job.load, todo, self.settings.prefetch, tickets, self.settings.reader)
        workers = [
            Worker(i, engine, job, prefetch, lambda c, r, e: results.put((c, r, e)), stop, streams)
            for i, (engine, streams) in enumerate(self.engines)
        ]
        for w in workers:
            w.start()
        try:
            while not writer.complete:
                try:
                    chunk, result, error = results.get(timeout=POLL * 4)
                except queue.Empty:
                    if not any(w.is_alive() for w in workers) and results.empty():
                        raise ChunkError(
                            f"{writer.chunks[writer.next].describe()}: every engine worker stopped before finishing it"
                        ) from None
                    continue
                if error is not None:
                    raise chunk_error(chunk, error)
                writer.add(chunk, result, tickets.release)
            out = sink.finish()
        except BaseException:
            sink.close()
            raise
        finally:
            stop.set()
            prefetch.close()
            for w in workers:
                w.join(timeout=30)
            self.stats = writer.close()
        return out
