"""Cutting large SMLM fields of view into overlapping tiles, with no duplicate localizations.

A camera frame of 2048×2048 px does not fit an engine built for 128×128 tiles (or a GPU's
memory at a useful batch size). :class:`FieldTiler` cuts each frame into equal tiles that
overlap by ``2 × margin`` pixels. The tiles' *cores* (the tile minus its margin, clipped at the
frame edge) partition the frame, and a localization is kept only by the tile whose core holds
its pixel — so an emitter in an overlap is reported once, by the tile that saw it with the most
context, never twice and never lost (LiteLoc's saver drops overlap margins the same way).

Examples
--------
>>> tiles = FieldTiler((64, 64), margin=8).tiles((100, 150))
>>> len(tiles), tiles[0].origin, tiles[0].size
(12, (0, 0), (64, 64))
>>> covered = np.zeros((100, 150), int)
>>> for t in tiles:
...     covered[t.core_global()] += 1
>>> bool((covered == 1).all())
True
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np  # noqa: F401  (the doctest uses it)


@dataclass(frozen=True)
class FieldTile:
    """A tile at ``origin`` (row, col) of ``size`` pixels; ``core`` is the part it owns (tile coordinates)."""

    origin: tuple[int, int]
    size: tuple[int, int]
    core: tuple[slice, slice]

    def crop(self) -> tuple[slice, slice]:
        """The tile's pixels in frame coordinates."""
        return tuple(slice(o, o + s) for o, s in zip(self.origin, self.size))

    def core_global(self) -> tuple[slice, slice]:
        """The owned pixels in frame coordinates."""
        return tuple(slice(o + c.start, o + c.stop) for o, c in zip(self.origin, self.core))


def _axis(n: int, tile: int, margin: int) -> list[tuple[int, int, int]]:
    """(tile start, core start, core stop) along one axis of ``n`` pixels."""
    if n <= tile:
        return [(0, 0, n)]
    core = tile - 2 * margin
    return [(min(max(a - margin, 0), n - tile), a, min(a + core, n)) for a in range(0, n, core)]


class FieldTiler:
    """Overlapping equal tiles of a frame and the core each one owns.

    Parameters
    ----------
    tile : (int, int)
        Tile size; frames no larger than this along an axis are not cut along it.
    margin : int
        Context pixels each side; should cover the network's receptive field radius for tiles
        to match whole-frame results (DilatedLoc: ~33 px; 16 is a compromise for speed).
    """

    def __init__(self, tile: tuple[int, int], margin: int = 16) -> None:
        if any(t <= 2 * margin for t in tile):
            raise ValueError(f"field tile {tuple(tile)} must be larger than twice the margin ({margin})")
        self.tile = (int(tile[0]), int(tile[1]))
        self.margin = int(margin)

    def tiles(self, frame: tuple[int, int]) -> list[FieldTile]:
        """The tiles covering a ``frame`` (height, width), row-major."""
        rows = _axis(frame[0], self.tile[0], self.margin)
        cols = _axis(frame[1], self.tile[1], self.margin)
        size = (min(self.tile[0], frame[0]), min(self.tile[1], frame[1]))
        return [
            FieldTile((rs, cs), size, (slice(ra - rs, rb - rs), slice(ca - cs, cb - cs)))
            for (rs, ra, rb), (cs, ca, cb) in itertools.product(rows, cols)
        ]
