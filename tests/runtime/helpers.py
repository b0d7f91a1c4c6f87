"""A fake job and engine for driving the runtime quickly: frames in, one table row per frame out."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np

from efficientbioai.engines.base import BaseInfer
from efficientbioai.runtime.chunks import Chunk, plan_frames
from efficientbioai.runtime.csv_sink import CsvTableSink
from efficientbioai.runtime.job import StreamJob


class Doubler(BaseInfer):
    """An engine that doubles its input (optionally slowly, or failing on a value)."""

    name = "doubler"

    def __init__(self, delay: float = 0.0, fail_at: float | None = None) -> None:
        super().__init__("fp32", 1)
        self.delay, self.fail_at = delay, fail_at

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        if self.fail_at is not None and (x == self.fail_at).any():
            raise RuntimeError("engine exploded")
        time.sleep(self.delay * np.random.default_rng(int(x.flat[0])).random())
        return [x * 2]


class FramesJob(StreamJob):
    """``n`` frames whose pixels equal their index; the result row per frame is ``frame, 2·index``."""

    unit = "frames"

    def __init__(self, n: int, chunk: int, batch: int = 3, load_delay: float = 0.0, crash_chunk: int | None = None):
        super().__init__(None, "frames")
        self.n, self.chunk, self.batch, self.load_delay, self.crash_chunk = n, chunk, batch, load_delay, crash_chunk
        self.alive = 0
        self.max_alive = 0
        self._lock = threading.Lock()

    def chunks(self) -> list[Chunk]:
        return plan_frames(self.n, self.chunk)

    def load(self, chunk: Chunk) -> np.ndarray:
        if chunk.index == self.crash_chunk:
            os._exit(3)  # the reader (process) dies without a word
        time.sleep(self.load_delay)
        if self._lock is not None:
            with self._lock:
                self.alive += 1
                self.max_alive = max(self.max_alive, self.alive)
        frames = np.arange(chunk.start, chunk.stop, dtype=np.float32)[:, None, None, None]
        return frames * np.ones((1, 1, 4, 4), np.float32)

    def batches(self, chunk, data):
        return [(data[i : i + self.batch], chunk.start + i) for i in range(0, len(data), self.batch)]

    def postprocess(self, chunk, first, outputs):
        values = outputs[0].numpy().reshape(len(outputs[0]), -1)[:, 0]
        rows = np.zeros((len(values), 7))
        rows[:, 0] = np.arange(first, first + len(values)) + 1
        rows[:, 1] = values
        return rows

    def merge(self, chunk, parts):
        return np.concatenate(parts)

    def sink(self, folder: Path | None, collect: bool) -> CsvTableSink:
        job = self

        class Counting(CsvTableSink):
            def _write(self, chunk, table):
                super()._write(chunk, table)
                if job._lock is not None:
                    with job._lock:
                        job.alive -= 1

        return Counting(Path(folder) / "frames.csv" if folder else None, collect)

    def fingerprint(self) -> dict:
        return {"job": "frames", "n": self.n, "chunk": self.chunk}

    def raw_bytes(self, chunk) -> int:
        return chunk.frames * 64

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_lock"} | {"_lock": None}


def expected(n: int) -> np.ndarray:
    rows = np.zeros((n, 7))
    rows[:, 0] = np.arange(n) + 1
    rows[:, 1] = 2 * np.arange(n)
    return rows


class DaskFramesJob(FramesJob):
    """:class:`FramesJob` whose Dask workers build a :class:`Doubler` (no model needed)."""

    def create_engine(self, variant, threads=None):
        return Doubler()
