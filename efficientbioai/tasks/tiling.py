"""Sliding-window inference: cut an image into overlapping tiles, predict, blend back.

One reusable object (in the spirit of MONAI's ``SlidingWindowInferer``) used by every task, so
large 2D fields of view and 3D volumes run through a network compiled for one tile size.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable

import numpy as np

from efficientbioai.terminal import bar as progress_bar

Predict = Callable[[np.ndarray], np.ndarray]  # or an engine with map_batches()


def _starts(size: int, tile: int, step: int) -> list[int]:
    """Tile origins along one axis: regular steps, the last tile flush with the end."""
    if size <= tile:
        return [0]
    return [*range(0, size - tile, step), size - tile]


def _gaussian_weight(tile: tuple[int, ...], sigma_scale: float = 0.125) -> np.ndarray:
    """Importance map peaking at the tile centre so seams get little weight."""
    grids = []
    for t in tile:
        c = (t - 1) / 2
        s = max(t * sigma_scale, 1e-3)
        grids.append(np.exp(-0.5 * ((np.arange(t) - c) / s) ** 2))
    w = functools.reduce(np.multiply.outer, grids)
    w = w / w.max()
    return np.maximum(w, 1e-3).astype(np.float32)


class SlidingWindow:
    """Tile, predict in batches, blend.

    Parameters
    ----------
    tile : tuple of int
        Spatial tile size the network runs at.
    overlap : float
        Fraction of the tile shared with each neighbour, in [0, 1).
    blend : {"gaussian", "constant"}
        How overlapping predictions are averaged.
    batch_size : int
        Tiles per call of ``predict``.
    progress : bool
        Show a progress bar over batches.

    Examples
    --------
    >>> sw = SlidingWindow((32, 32), overlap=0.25, batch_size=4)
    >>> image = np.random.rand(1, 50, 70).astype(np.float32)
    >>> out = sw(image, lambda batch: batch * 2)
    >>> bool(np.allclose(out, image * 2, atol=1e-5))
    True
    """

    def __init__(
        self,
        tile: tuple[int, ...],
        overlap: float = 0.25,
        blend: str = "gaussian",
        batch_size: int = 4,
        progress: bool = False,
    ) -> None:
        if not 0 <= overlap < 1:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}")
        if blend not in ("gaussian", "constant"):
            raise ValueError(f"blend must be 'gaussian' or 'constant', got {blend!r}")
        self.tile = tuple(int(t) for t in tile)
        self.overlap = overlap
        self.blend_mode = blend
        self.batch_size = batch_size
        self.progress = progress

    def windows(self, spatial: tuple[int, ...]) -> list[tuple[slice, ...]]:
        """Spatial slices of every tile covering an image of shape ``spatial``."""
        if len(spatial) != len(self.tile):
            raise ValueError(f"image has {len(spatial)} spatial dims, tile {self.tile} has {len(self.tile)}")
        axes = []
        for size, t in zip(spatial, self.tile):
            t = min(t, size)
            step = max(1, int(round(t * (1 - self.overlap))))
            axes.append([slice(s, s + t) for s in _starts(size, t, step)])
        return list(itertools.product(*axes))

    def pad(self, image: np.ndarray) -> np.ndarray:
        """``image`` ``(C, *spatial)`` padded (reflect) to at least the tile along every axis."""
        pad = [(0, 0)] + [(0, max(0, t - s)) for t, s in zip(self.tile, image.shape[1:])]
        return np.pad(image, pad, mode="reflect") if any(p[1] for p in pad) else image

    def window_batches(self, spatial: tuple[int, ...]) -> list[list[tuple[slice, ...]]]:
        """The tiles of a (padded) image of shape ``spatial``, grouped ``batch_size`` at a time."""
        windows = self.windows(spatial)
        return [windows[i : i + self.batch_size] for i in range(0, len(windows), self.batch_size)]

    @staticmethod
    def batch(image: np.ndarray, windows: list[tuple[slice, ...]]) -> np.ndarray:
        """The network input ``(n, C, *tile)`` for ``windows`` of ``image``."""
        return np.ascontiguousarray(np.stack([image[(slice(None), *w)] for w in windows]))

    def blend(self, spatial: tuple[int, ...]) -> Blend:
        """An accumulator for the predictions of a (padded) image of shape ``spatial``."""
        weight = _gaussian_weight(self.tile) if self.blend_mode == "gaussian" else np.ones(self.tile, np.float32)
        return Blend(spatial, weight)

    def __call__(self, image: np.ndarray, predict: Predict) -> np.ndarray:
        """Predict ``image`` of shape ``(C, *spatial)``; returns ``(C_out, *spatial)``.

        Images smaller than the tile along an axis are padded (reflect) to the tile and cropped
        back, so the network always sees its compiled tile size.
        """
        padded = self.pad(image)
        chunks = self.window_batches(padded.shape[1:])
        blend = self.blend(padded.shape[1:])
        batches = (self.batch(padded, chunk) for chunk in chunks)
        # Engines with several requests in flight (OpenVINO's async queue) take the whole stream.
        mapper = getattr(predict, "map_batches", None)
        preds = mapper(batches) if mapper is not None else map(predict, batches)
        for chunk, pred in progress_bar(
            zip(chunks, preds), total=len(chunks), disable=not self.progress, desc="tiles", leave=False
        ):
            blend.add(chunk, pred)
        return blend.result(image.shape[1:])


class Blend:
    """Weighted sum of overlapping tile predictions over an image, and the sum of the weights.

    Tiles can be added in any order (the runtime adds them as the engine returns them).
    """

    def __init__(self, spatial: tuple[int, ...], weight: np.ndarray) -> None:
        self.spatial, self.weight = tuple(spatial), weight
        self.out: np.ndarray | None = None
        self.norm = np.zeros(self.spatial, np.float32)

    def add(self, windows: list[tuple[slice, ...]], pred) -> None:
        """Add the predictions ``(n, C_out, *tile)`` of ``windows``."""
        if isinstance(pred, dict):
            raise ValueError("SlidingWindow needs one output array; concatenate the heads in the model")
        pred = np.asarray(pred, dtype=np.float32)
        tile_shape = tuple(s.stop - s.start for s in windows[0])
        if pred.shape[0] != len(windows) or pred.shape[2:] != tile_shape:
            raise ValueError(
                f"predict returned shape {pred.shape} for {len(windows)} tiles of {tile_shape}: "
                "image-to-image models must keep the spatial size"
            )
        if self.out is None:
            self.out = np.zeros((pred.shape[1], *self.spatial), np.float32)
        for w, p in zip(windows, pred):
            self.out[(slice(None), *w)] += p * self.weight
            self.norm[w] += self.weight

    def result(self, spatial: tuple[int, ...] | None = None) -> np.ndarray:
        """The blended image ``(C_out, *spatial)`` (cropped to ``spatial``, e.g. before padding)."""
        assert self.out is not None, "no tile was added"
        out = self.out / self.norm
        crop = (slice(None),) + tuple(slice(0, s) for s in (spatial or self.spatial))
        return out[crop]
