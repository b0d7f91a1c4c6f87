"""Images and volumes as a stream: overlapping blocks → sliding-window tiles → blocks written in place.

The ``map_overlap`` pattern: the image is cut into blocks (``runtime.block``; default one block
for the whole image), each read with a halo of half a tile, predicted with the task's
:class:`~efficientbioai.tasks.tiling.SlidingWindow`, and only its core is kept and written
(TIFF or zarr). Tile predictions are blended as the engine returns them, so a block's tiles
never all sit in memory at once. With a single block the result equals ``Task.predict``.

An in-memory image is normalised whole, exactly as ``parser.preprocess`` does; a volume read
lazily from disk is normalised per block with statistics of the whole volume
(:class:`~efficientbioai.runtime.global_normalizer.GlobalNormalizer`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from efficientbioai.errors import ConfigError, InputError
from efficientbioai.io.frames import ArraySource, FrameSource
from efficientbioai.parsers.base import BaseParser
from efficientbioai.runtime.block_sink import BlockSink
from efficientbioai.runtime.chunks import Block, plan_blocks
from efficientbioai.runtime.global_normalizer import GlobalNormalizer
from efficientbioai.runtime.job import LockedCache, StreamJob, source_identity


class ChannelFirst:
    """A lazily read ``(*spatial)`` or ``(C, *spatial)`` source seen as ``(C, *spatial)``."""

    def __init__(self, source: FrameSource, spatial_dims: int, channels: int, name: str) -> None:
        if source.ndim == spatial_dims and channels == 1:
            self.add_axis = True
        elif source.ndim == spatial_dims + 1 and source.shape[0] == channels:
            self.add_axis = False
        else:
            raise InputError(
                f"{name}: shape {source.shape} does not fit a {spatial_dims}D model with {channels} input channel(s)"
            )
        self.source = source
        self.shape = (1, *source.shape) if self.add_axis else tuple(source.shape)

    def __getitem__(self, key: tuple) -> np.ndarray:
        """``key`` = (channel slice, *spatial slices)."""
        if self.add_axis:
            return self.source[tuple(key[1:])][None][key[0]]
        return self.source[key]


class _Batches(Sequence):
    """A block's tile batches, cut only when the worker asks for them."""

    def __init__(self, window, padded: np.ndarray, groups: list) -> None:
        self.window, self.padded, self.groups = window, padded, groups

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, i: int) -> tuple[np.ndarray, Any]:
        if not 0 <= i < len(self.groups):
            raise IndexError(i)
        return self.window.batch(self.padded, self.groups[i]), self.groups[i]


class BlockJob(StreamJob):
    """One image or volume through a tiled task (``denoise``, ``segment``) block by block."""

    unit = "blocks"

    def __init__(self, task: Any, name: str, image: Any) -> None:
        super().__init__(task, name)
        cfg, parser = task.config, task.parser
        self.window = task.window()
        if isinstance(image, FrameSource):  # read lazily: normalise with whole-volume statistics
            if type(parser).preprocess is not BaseParser.preprocess:
                raise ConfigError(
                    f"{name}: {type(parser).__name__} has its own preprocess, which needs the whole image in "
                    "memory; stream it from a .tif/.npy the task reads whole, or set runtime.enabled: false"
                )
            self.raw = ChannelFirst(image, parser.spatial_dims, parser.in_channels, name)
            norm = cfg.inference.normalize
            self.normalizer: GlobalNormalizer | None = GlobalNormalizer(norm.kind, norm.low, norm.high).fit(self.raw)
            self.image = None
            self.identity = source_identity(image)
        else:
            self.raw = self.normalizer = None
            self.image = parser.preprocess(np.asarray(image))
            self.identity = source_identity(ArraySource(np.asarray(image), name))
        self.spatial = tuple(int(s) for s in (self.raw if self.raw is not None else self.image).shape[1:])
        block = cfg.runtime.block
        if block is not None and len(block) != len(self.spatial):
            raise ConfigError(f"runtime.block {block} has {len(block)} sizes but {name} has {len(self.spatial)} axes")
        self.block = tuple(min(b, s) for b, s in zip(block or self.spatial, self.spatial))
        self.halo = tuple(0 if b >= s else t // 2 for b, s, t in zip(self.block, self.spatial, self.window.tile))
        self._blends = LockedCache()  # block index → (Blend, shape, the Blend's lock)

    def chunks(self) -> list[Block]:
        return plan_blocks(self.spatial, self.block, self.halo)

    def load(self, block: Block) -> np.ndarray:
        if self.image is not None:
            return np.ascontiguousarray(self.image[(slice(None), *block.outer)])
        return self.normalizer(self.raw[(slice(None), *block.outer)])

    def units(self, block: Block) -> int:
        return 1

    def total_units(self) -> float:
        return 1.0  # the report counts images

    def batches(self, block: Block, data: np.ndarray) -> Sequence[tuple[np.ndarray, Any]]:
        padded = self.window.pad(data)
        with self._blends.lock:
            self._blends[block.index] = (self.window.blend(padded.shape[1:]), data.shape[1:], threading.Lock())
        return _Batches(self.window, padded, self.window.window_batches(padded.shape[1:]))

    def postprocess(self, block: Block, windows: Any, outputs: list) -> None:
        blend, _, lock = self._blends[block.index]
        pred = outputs[0].detach().cpu().numpy()
        with lock:
            blend.add(windows, pred)

    def merge(self, block: Block, parts: list) -> np.ndarray:
        with self._blends.lock:
            blend, shape, _ = self._blends.pop(block.index)
        raw = blend.result(shape)[(slice(None), *block.inner)]
        return np.ascontiguousarray(self.task.finish(raw))

    def release(self, block: Block) -> None:
        with self._blends.lock:
            self._blends.pop(block.index, None)

    def sink(self, folder: Path | None, collect: bool) -> BlockSink:
        fmt = self.task.config.runtime.output_format
        if fmt == "csv":
            raise ConfigError("runtime.output_format 'csv' is for localizations; images are written as tiff or zarr")
        path = None if folder is None else Path(folder) / f"{self.name}{'.zarr' if fmt == 'zarr' else '.tif'}"
        return BlockSink(path, self.spatial, self.block, collect)

    def fingerprint(self) -> dict:
        inf = self.task.config.inference
        return {
            "job": "blocks",
            "input": self.identity,
            "block": list(self.block),
            "tile": list(inf.tile),
            "overlap": inf.overlap,
            "blend": inf.blend,
            "normalize": inf.normalize.model_dump(),
        }
