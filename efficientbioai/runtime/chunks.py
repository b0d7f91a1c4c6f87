"""Chunks: the unit that is read, run, written, resumed and sent to a Dask worker.

Frame stacks are cut along time (:func:`plan_frames`), with a temporal halo when the network
sees neighbouring frames, so windows at a chunk border equal those of the whole stack. Volumes
are cut into blocks with a spatial halo (:func:`plan_blocks`, the ``map_overlap`` pattern):
each block is predicted with its halo and only its core is kept, so seams fall where the
network had context on both sides.

Examples
--------
>>> [(c.start, c.stop, c.read_start, c.read_stop) for c in plan_frames(10, 4, halo=1)]
[(0, 4, 0, 5), (4, 8, 3, 9), (8, 10, 7, 10)]
>>> b = plan_blocks((100,), (40,), (8,))
>>> [(x.core[0].start, x.core[0].stop, x.outer[0].start, x.outer[0].stop) for x in b]
[(0, 40, 0, 48), (40, 80, 32, 88), (80, 100, 72, 100)]
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass


@dataclass(frozen=True)
class Chunk:
    """Frames ``start..stop-1`` (0-based), read with their halo ``read_start..read_stop-1``."""

    index: int
    start: int
    stop: int
    read_start: int
    read_stop: int

    @property
    def frames(self) -> int:
        return self.stop - self.start

    def describe(self) -> str:
        return f"chunk {self.index} (frames {self.start + 1}-{self.stop})"


@dataclass(frozen=True)
class Block:
    """A block of a volume: ``core`` is written, ``outer`` (core plus halo) is predicted."""

    index: int
    core: tuple[slice, ...]
    outer: tuple[slice, ...]

    @property
    def frames(self) -> int:
        return 1

    @property
    def inner(self) -> tuple[slice, ...]:
        """The core, relative to the outer block."""
        return tuple(slice(c.start - o.start, c.stop - o.start) for c, o in zip(self.core, self.outer))

    def describe(self) -> str:
        span = ", ".join(f"{s.start}:{s.stop}" for s in self.core)
        return f"block {self.index} [{span}]"


def plan_frames(n_frames: int, chunk_frames: int, halo: int = 0) -> list[Chunk]:
    """Consecutive chunks of ``chunk_frames`` frames covering ``n_frames``, each with ``halo``."""
    if chunk_frames < 1:
        raise ValueError(f"chunk_frames must be at least 1, got {chunk_frames}")
    return [
        Chunk(i, s, min(s + chunk_frames, n_frames), max(0, s - halo), min(n_frames, s + chunk_frames + halo))
        for i, s in enumerate(range(0, n_frames, chunk_frames))
    ]


def plan_blocks(shape: tuple[int, ...], block: tuple[int, ...], halo: tuple[int, ...]) -> list[Block]:
    """Blocks of at most ``block`` covering ``shape`` (row-major order), each with ``halo``."""
    if len(shape) != len(block) or len(halo) != len(shape):
        raise ValueError(f"shape {shape}, block {block} and halo {halo} need the same number of axes")
    axes = []
    for size, b, h in zip(shape, block, halo):
        starts = range(0, size, max(1, b))
        axes.append([(slice(s, min(s + b, size)), slice(max(0, s - h), min(size, s + b + h))) for s in starts])
    return [
        Block(i, tuple(c for c, _ in combo), tuple(o for _, o in combo))
        for i, combo in enumerate(itertools.product(*axes))
    ]
