"""Engine workers: one thread per device (or stream), each with its own engine instance.

A worker takes loaded chunks from the shared prefetch queue, submits their batches to its
executor, post-processes each batch as its outputs arrive, and hands the finished chunk result
to the driver, which writes results in chunk order. Several workers on one machine are several
devices (``cuda:0``, ``cuda:1``), or several engine instances sharing one (OpenVINO CPU streams,
TensorRT contexts on separate CUDA streams). Any exception becomes a result carrying its chunk,
so the driver reports *which* chunk failed instead of waiting forever.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from efficientbioai.config import Config, split_variant
from efficientbioai.engines.base import BaseInfer
from efficientbioai.engines.factory import create_engine
from efficientbioai.registry import ENGINES
from efficientbioai.runtime.job import StreamJob
from efficientbioai.runtime.prefetch import Prefetcher
from efficientbioai.runtime.settings import WorkerSection

log = logging.getLogger(__name__)

#: ``emit(chunk, result, error)``: a finished chunk, or the error that stopped it.
Emit = Callable[[Any, Any, BaseException | None], None]


class _Pending:
    """A chunk whose batches are in flight: their results, and how many are still missing."""

    def __init__(self, chunk: Any, n: int) -> None:
        self.chunk, self.parts, self.missing = chunk, [None] * n, n


class Worker(threading.Thread):
    """Runs chunks from ``inbox`` on ``engine`` until the inbox is exhausted or ``stop`` is set."""

    def __init__(
        self,
        index: int,
        engine: BaseInfer,
        job: StreamJob,
        inbox: Prefetcher,
        emit: Emit,
        stop: threading.Event,
        streams: int | None = None,
    ) -> None:
        super().__init__(name=f"efficientbioai-worker-{index}", daemon=True)
        self.index, self.engine, self.job, self.inbox = index, engine, job, inbox
        self.emit, self.stop, self.streams = emit, stop, streams
        self._pending: dict[int, _Pending] = {}
        self._lock = threading.Lock()

    def _on_output(self, meta: tuple[int, int, Any], outputs: list) -> None:
        index, part, info = meta
        pending = self._pending[index]
        result = self.job.postprocess(pending.chunk, info, outputs)
        with self._lock:
            pending.parts[part] = result
            pending.missing -= 1
            complete = pending.missing == 0
            if complete:
                del self._pending[index]
        if complete:
            self.emit(pending.chunk, self.job.merge(pending.chunk, pending.parts), None)

    def run(self) -> None:
        chunk, executor = None, None
        try:
            executor = self.engine.executor(self._on_output, self.streams)
            while not self.stop.is_set():
                item = self.inbox.get(self.stop)
                if item is None:
                    break
                chunk, data, error = item
                if error is not None:
                    raise error
                batches = self.job.batches(chunk, data)
                del data
                if not batches:
                    self.emit(chunk, self.job.merge(chunk, []), None)
                    continue
                with self._lock:
                    self._pending[chunk.index] = _Pending(chunk, len(batches))
                for part, (x, info) in enumerate(batches):
                    if self.stop.is_set():
                        break
                    executor.submit(x, (chunk.index, part, info))
            executor.drain()
        except BaseException as exc:
            failed = getattr(exc, "meta", None)
            if failed is not None and failed[0] in self._pending:
                chunk = self._pending[failed[0]].chunk
            self.emit(chunk, None, exc)
        finally:
            if executor is not None:
                executor.close()


def worker_engines(
    variant: str, config: Config, parser: Any, workers: list[WorkerSection], given: BaseInfer | None = None
) -> list[tuple[BaseInfer, int | None]]:
    """``(engine, streams)`` per configured worker.

    One worker left at its defaults reuses ``given`` (the engine the report already built and
    timed). Otherwise each worker gets its own engine on its device, with ``threads`` (default:
    ``engine.threads`` or all cores, split evenly between workers) and ``streams``.
    """
    if given is not None and len(workers) == 1 and workers[0] == WorkerSection():
        return [(given, None)]
    total = config.engine.threads or os.cpu_count() or 1
    out = []
    for spec in workers:
        cfg = config.model_copy(deep=True)
        cfg.engine.threads = spec.threads or max(1, total // len(workers))
        if spec.streams:
            cfg.engine.num_requests = spec.streams
        engine_name, precision, pruned = split_variant(variant)
        if engine_name == "tensorrt" and spec.device != "auto":
            cfg.engine.tensorrt.device = int(spec.device.split(":")[-1])
        if engine_name == "openvino" and spec.device not in ("auto", "CPU"):
            engine = ENGINES.get("openvino")(
                cfg.artefact(variant), precision, cfg.engine.threads, cfg.engine.num_requests, device=spec.device
            )
        else:
            engine = create_engine(variant, cfg, parser)
        if engine_name == "torch" and spec.device != "auto":
            engine.move_to(spec.device)
        out.append((engine, spec.streams))
    log.info("%d engine workers for %s: %s", len(out), variant, [e.describe().get("device", "cpu") for e, _ in out])
    return out
