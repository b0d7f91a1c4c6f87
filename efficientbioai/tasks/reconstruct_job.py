"""Deep-STORM reconstruction as a stream: chunks of frames → one summed super-resolution image.

Per batch, right after the engine, ``max(prediction, 0)`` is summed over the batch's frames on
the engine's device (a model exported with ``sum_frames`` has done it in its graph already; the
sum of one clipped image is itself), and a chunk's batch sums are added on the device too — so
one ``u·H × u·W`` image per chunk reaches the host, where the sink adds it to the accumulator
and checkpoints it for resume.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from efficientbioai.deepstorm.data import pad_frames
from efficientbioai.deepstorm.stack import check_stack
from efficientbioai.errors import ConfigError
from efficientbioai.runtime.chunks import Chunk, plan_frames
from efficientbioai.runtime.job import StreamJob, source_identity
from efficientbioai.runtime.sum_sink import SumSink


class ReconstructJob(StreamJob):
    """A frame stack through :class:`~efficientbioai.tasks.reconstruct.ReconstructionTask` in chunks."""

    def __init__(self, task: Any, name: str, stack: Any) -> None:
        super().__init__(task, name)
        self.source = check_stack(stack, name)
        _, h, w = self.source.shape
        self.multiple, self.upsample = task.multiple, task.upsample
        self.frame = (h, w)
        self.grid = (self.upsample * (h + (-h) % self.multiple), self.upsample * (w + (-w) % self.multiple))
        self.batch_size = task.config.inference.batch_size
        self.chunk_frames = task.config.runtime.chunk_frames

    def chunks(self) -> list[Chunk]:
        return plan_frames(len(self.source), self.chunk_frames)

    def load(self, chunk: Chunk) -> np.ndarray:
        frames = self.source.read(chunk.start, chunk.stop)
        return np.ascontiguousarray(pad_frames(frames, self.multiple)[:, None])

    def raw_bytes(self, chunk: Chunk) -> int:
        return chunk.frames * self.source.frame_bytes

    def batches(self, chunk: Chunk, frames: np.ndarray) -> list[tuple[np.ndarray, Any]]:
        return [(frames[i : i + self.batch_size], None) for i in range(0, len(frames), self.batch_size)]

    def postprocess(self, chunk: Chunk, info: Any, outputs: list) -> torch.Tensor:
        out = outputs[0]
        if tuple(out.shape[-2:]) != self.grid:
            raise ValueError(f"engine output {tuple(out.shape)} does not match the super-resolution grid {self.grid}")
        with torch.no_grad():
            return torch.relu(out[:, 0]).sum(0)  # stays on the engine's device

    def merge(self, chunk: Chunk, parts: list) -> np.ndarray:
        total = parts[0].clone()
        for p in parts[1:]:
            total += p
        return total.float().cpu().numpy()

    def sink(self, folder: Path | None, collect: bool) -> SumSink:
        fmt = self.task.config.runtime.output_format
        if fmt not in ("auto", "tiff"):
            raise ConfigError(f"runtime.output_format {fmt!r}: the reconstruction is one image, written as TIFF")
        u, (h, w) = self.upsample, self.frame
        path = None if folder is None else Path(folder) / f"{self.name}_sr.tif"
        return SumSink(
            path,
            self.grid,
            finish=lambda acc: acc[: u * h, : u * w].copy(),
            write=lambda image: self.task.write(image, Path(folder), self.name),
            collect=collect,
        )

    def fingerprint(self) -> dict:
        return {
            "job": "reconstruct",
            "input": source_identity(self.source),
            "chunk_frames": self.chunk_frames,
            "batch_size": self.batch_size,
            "grid": list(self.grid),
        }
