"""Scale-out on Dask: chunks run on workers that load the engine once; results merged in order.

``runtime.cluster: local`` starts a ``LocalCluster`` of ``runtime.cluster_workers`` processes
(one thread each) on this machine; an address (``tcp://scheduler:8786``) connects to a running
cluster — the same config then runs on many machines. The job (task, config, and its input as a
*path*) is sent to every worker once; each chunk task loads its frames (SMLM, Deep-STORM) or its
overlapping block (volumes: the ``map_overlap`` pattern) on the worker, runs it on the worker's
engine (built on first use and cached in the worker process) and returns only the small result —
localization rows, a partial sum, a block's core. The driver keeps at most two chunks per
worker in flight and writes results in chunk order through the same sinks, so ``resume`` and
the output files behave exactly as on one machine.

Workers must see the experiment folder and the inputs at the same paths (a shared filesystem),
and have this package installed.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from efficientbioai.errors import BackendUnavailableError
from efficientbioai.runtime.job import StreamJob, run_chunk
from efficientbioai.runtime.local_pipeline import OrderedWriter, chunk_error
from efficientbioai.runtime.progress import StreamStats
from efficientbioai.runtime.settings import RuntimeSection
from efficientbioai.runtime.sink import Sink

log = logging.getLogger(__name__)

#: In each worker process: (job key, variant) → engine, so a worker builds its engine once.
_ENGINES: dict[tuple[str, str], Any] = {}


def connect(settings: RuntimeSection):
    """A ``distributed.Client`` for ``runtime.cluster`` (``local``: a new LocalCluster on 127.0.0.1)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise BackendUnavailableError(
            "runtime.cluster needs dask.distributed: pip install 'efficientbioai[dist]'"
        ) from None
    if settings.cluster == "local":
        cluster = LocalCluster(
            n_workers=settings.cluster_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        return Client(cluster)
    try:
        return Client(settings.cluster, timeout="30s")
    except OSError as exc:
        raise BackendUnavailableError(
            f"runtime.cluster: cannot reach the Dask scheduler at {settings.cluster}: {exc}"
        ) from None


def _drop_engines() -> int:
    """On a worker: free the cached engine (and its threads) so the worker can stop or run other jobs."""
    n = len(_ENGINES)
    _ENGINES.clear()
    return n


def close(client) -> None:
    """Free the workers' engines, close the client and the LocalCluster it started (if any)."""
    cluster = getattr(client, "cluster", None)
    try:
        client.run(_drop_engines)
    except Exception as exc:  # a worker that is gone has nothing to free
        log.debug("could not free engines on every worker: %s", exc)
    client.close()
    if cluster is not None:
        cluster.close()


def worker_threads(client, settings: RuntimeSection, configured: int | None) -> int | None:
    """Engine threads per Dask worker: the config's, else this machine's cores split (local cluster)."""
    if configured:
        return configured
    if settings.cluster == "local":
        return max(1, (os.cpu_count() or 1) // settings.cluster_workers)
    return None


def _engine(job: StreamJob, variant: str, threads: int | None):
    key = (job.key, variant)
    if key not in _ENGINES:
        _ENGINES.clear()  # one job at a time per worker: free the previous engine
        _ENGINES[key] = job.create_engine(variant, threads)
    return _ENGINES[key]


def remote_chunk(job: StreamJob, variant: str, threads: int | None, chunk: Any) -> Any:
    """Runs on a Dask worker: load the chunk there, run it on the worker's cached engine."""
    return run_chunk(job, _engine(job, variant, threads), chunk, job.load(chunk))


def run_on_dask(
    client, job: StreamJob, sink: Sink, settings: RuntimeSection, variant: str, threads: int | None, fingerprint: dict
) -> tuple[Any, StreamStats]:
    """Stream ``job`` through the Dask cluster behind ``client`` into ``sink``."""
    from distributed import as_completed

    writer = OrderedWriter(job, sink, settings, fingerprint)
    if writer.complete:
        return sink.finish(), writer.close()
    todo = iter(writer.chunks[writer.done :])
    limit = 2 * max(1, len(client.scheduler_info().get("workers", {})))  # chunks in flight: two per worker
    shared = client.scatter(job, broadcast=True, hash=False)  # sent to each worker once
    pending: dict = {}
    running = as_completed()

    def submit_next() -> bool:
        chunk = next(todo, None)
        if chunk is None:
            return False
        key = f"{job.name}-chunk{chunk.index}-{job.key[:8]}"
        fut = client.submit(remote_chunk, shared, variant, threads, chunk, pure=False, key=key)
        pending[fut] = chunk
        running.add(fut)
        return True

    while len(pending) < limit and submit_next():
        pass
    try:
        for fut in running:
            chunk = pending.pop(fut)
            try:
                result = fut.result()
            except Exception as exc:
                lost = _lost_with(chunk, pending) if type(exc).__name__ == "KilledWorker" else [chunk]
                raise chunk_error(lost[0], exc, "a Dask worker", also=lost[1:]) from None
            writer.add(chunk, result)
            while len(pending) + len(writer.buffered) < limit and submit_next():
                pass
        out = sink.finish()
    except BaseException:
        for fut in pending:
            fut.cancel()
        sink.close()
        raise
    finally:
        stats = writer.close()
    return out, stats


def _lost_with(chunk: Any, pending: dict, grace_s: float = 2.0) -> list:
    """Every chunk that failed with ``chunk`` when a worker died: any one of them may have killed it.

    The scheduler fails all the tasks a dead worker held at once, in no particular order."""
    deadline = time.monotonic() + grace_s
    while True:
        lost = [chunk] + [c for f, c in pending.items() if f.status == "error"]
        if time.monotonic() > deadline:
            return sorted(lost, key=lambda c: c.index)
        time.sleep(0.1)
