"""Read chunks ahead of the engines, in a background thread or process, into a bounded queue.

The DilatedLoc frame's point: with a fast network, loading limits throughput unless the next
frames are already in memory when the engine asks. :class:`Prefetcher` loads chunks in order
while the engines run. Two bounds keep memory flat however long the stack: the queue holds at
most ``depth`` loaded chunks, and every chunk takes a *ticket* that is only returned once its
result is written — so loaded, running and finished-but-unwritten chunks together never exceed
the number of tickets.

A load error travels through the queue with its chunk, so the consumer raises it naming the
chunk. :meth:`close` stops the thread (and process) promptly, e.g. on Ctrl-C.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)

#: How often blocked calls wake up to check for a stop request (seconds).
POLL = 0.05


class Prefetcher:
    """Loads ``load(chunk)`` for each chunk, in order, ahead of the consumers.

    Parameters
    ----------
    load : callable
        ``load(chunk) -> data``; must pickle when ``mode`` is ``"process"``.
    chunks : sequence
        Chunks to load, in order.
    depth : int
        Loaded chunks waiting in the queue at most.
    tickets : threading.Semaphore, optional
        Taken per chunk before it is loaded; the consumer releases it after writing.
    mode : {"thread", "process"}
        Load in this process's background thread, or in one worker process.
    """

    def __init__(
        self,
        load: Callable[[Any], Any],
        chunks: Sequence[Any],
        depth: int = 2,
        tickets: threading.Semaphore | None = None,
        mode: str = "thread",
    ) -> None:
        self.load, self.chunks, self.tickets, self.mode = load, list(chunks), tickets, mode
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self.depth = max(1, depth)
        self.stop = threading.Event()
        self.finished = threading.Event()
        self.thread = threading.Thread(target=self._run, name="efficientbioai-prefetch", daemon=True)
        self.thread.start()

    # -- producer ----------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            if self.mode == "process":
                self._run_process()
            else:
                for chunk in self.chunks:
                    if not self._ticket() or not self._deliver(chunk, "the reader", self.load, chunk):
                        return
        finally:
            self.finished.set()

    def _run_process(self) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pending: deque = deque()
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=context, initializer=_set_loader, initargs=(self.load,)) as pool:
            chunks = iter(self.chunks)
            while True:
                while len(pending) < self.depth:
                    chunk = next(chunks, None)
                    if chunk is None or not self._ticket():
                        break
                    pending.append((chunk, pool.submit(_load, chunk)))  # the loader was sent once
                if not pending or self.stop.is_set():
                    for _, fut in pending:
                        fut.cancel()
                    return
                chunk, fut = pending.popleft()
                if not self._deliver(chunk, "the reader process", _wait, fut, self.stop):
                    return

    def _deliver(self, chunk: Any, stage: str, read: Callable[..., Any], *args: Any) -> bool:
        """Queue ``(chunk, read(*args), None)``, or the error ``read`` raised (which ends the
        producer: returns False, as when stopping)."""
        try:
            item = (chunk, read(*args), None)
        except BaseException as exc:  # delivered with its chunk; a crashed reader process: BrokenProcessPool
            exc.stage = stage
            self._put((chunk, None, exc))
            return False
        return self._put(item)

    def _ticket(self) -> bool:
        while self.tickets is not None and not self.stop.is_set():
            if self.tickets.acquire(timeout=POLL):
                return True
        return not self.stop.is_set()

    def _put(self, item: tuple) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=POLL)
                return True
            except queue.Full:
                continue
        return False

    # -- consumers ---------------------------------------------------------------------------------
    def get(self, stop: threading.Event | None = None) -> tuple | None:
        """The next ``(chunk, data, error)``, or None when every chunk has been handed out (or stopping)."""
        while not self.stop.is_set() and not (stop is not None and stop.is_set()):
            try:
                return self.queue.get(timeout=POLL)
            except queue.Empty:
                if self.finished.is_set() and self.queue.empty():
                    return None
        return None

    def close(self) -> None:
        """Stop loading and wait for the background thread (and process) to end."""
        self.stop.set()
        self.thread.join(timeout=30)
        if self.thread.is_alive():
            log.warning("the prefetch thread did not stop within 30 s")


_LOADER: Callable[[Any], Any] | None = None


def _set_loader(load: Callable[[Any], Any]) -> None:
    """In the reader process: keep the loader (and the job it belongs to) for every chunk."""
    global _LOADER
    _LOADER = load


def _load(chunk: Any) -> Any:
    return _LOADER(chunk)


def _wait(fut, stop: threading.Event):
    from concurrent.futures import TimeoutError as FutureTimeout

    while True:
        try:
            return fut.result(timeout=POLL)
        except FutureTimeout:
            if stop.is_set():
                fut.cancel()
                raise InterruptedError("prefetch stopped") from None
