"""Frame stacks read lazily (a TIFF page at a time, ``.npy`` memory-mapped) and checked.

A Deep-STORM acquisition is thousands of frames; only the batch being predicted needs to be in
memory. :class:`TiffStack` reads pages on demand, and :func:`check_stack` validates what can be
known without reading pixels (dimensions, dtype, size); NaN/Inf are caught batch by batch in
:func:`frame_batches` with the index of the offending frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tifffile

from efficientbioai.errors import InputError

#: Smallest frame side accepted (a 26-px training patch is the usual; below 8 px nothing is left).
MIN_FRAME = 8


class TiffStack:
    """A ``(T, H, W)`` TIFF stack whose frames are read only when sliced."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._tif = tifffile.TiffFile(self.path)
            series = self._tif.series[0]
        except Exception as exc:  # tifffile raises many types for a corrupt file
            raise InputError(f"{self.path}: cannot read TIFF ({type(exc).__name__}: {exc})") from None
        self.shape = tuple(series.shape)
        self.dtype = np.dtype(series.dtype)
        self._paged = len(self.shape) == 3 and len(series.pages) == self.shape[0]
        self._all: np.ndarray | None = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: slice) -> np.ndarray:
        if not isinstance(index, slice):
            raise TypeError("TiffStack supports slicing frames, e.g. stack[0:8]")
        if self._paged:
            keys = list(range(*index.indices(len(self))))
            return self._tif.asarray(key=keys).reshape(len(keys), *self.shape[1:])
        if self._all is None:  # one multi-frame page: read it once
            self._all = self._tif.asarray()
        return self._all[index]

    def close(self) -> None:
        self._tif.close()


def open_stack(path: str | Path) -> TiffStack | np.ndarray:
    """A lazily read stack from a TIFF (page by page) or ``.npy`` (memory-mapped) file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"stack not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        return TiffStack(path)
    if suffix == ".npy":
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except Exception as exc:
            raise InputError(f"{path}: cannot read .npy ({type(exc).__name__}: {exc})") from None
    raise InputError(f"{path}: unsupported stack type {suffix!r}; use .tif, .tiff or .npy")


def check_stack(stack, name: str = "stack"):
    """Return ``stack`` if it is a usable ``(frames, height, width)`` stack of real numbers.

    Raises :class:`InputError` saying what to change: not 3D, a non-numeric dtype, no frames, or
    frames smaller than :data:`MIN_FRAME`. In-memory arrays are also checked for NaN/Inf here;
    lazy stacks are checked per batch by :func:`frame_batches`.
    """
    shape, dtype = tuple(stack.shape), np.dtype(stack.dtype)
    if len(shape) != 3:
        hint = " (a single 2D image: Deep-STORM needs many frames to sum)" if len(shape) == 2 else ""
        raise InputError(f"{name}: a Deep-STORM stack must be 3D (frames, height, width); got shape {shape}{hint}")
    if not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
        raise InputError(f"{name}: pixel type {dtype} is not a real number type; save the frames as integers or floats")
    if shape[0] == 0:
        raise InputError(f"{name}: the stack has no frames")
    if min(shape[1:]) < MIN_FRAME:
        raise InputError(f"{name}: frames of {shape[1]}×{shape[2]} px are smaller than the minimum {MIN_FRAME} px")
    if isinstance(stack, np.ndarray) and not isinstance(stack, np.memmap):
        bad = ~np.isfinite(stack)
        if bad.any():
            frame = int(np.argwhere(bad)[0][0])
            raise InputError(
                f"{name}: {int(bad.sum())} NaN/Inf pixels (first in frame {frame + 1}); fix or drop those frames"
            )
    return stack


def frame_batches(stack, batch_size: int, multiple: int, name: str = "stack") -> Iterator[np.ndarray]:
    """``(n, 1, H', W')`` float32 batches in order, padded to ``multiple`` and checked for NaN/Inf."""
    from efficientbioai.deepstorm.data import pad_frames

    for start in range(0, len(stack), batch_size):
        x = np.asarray(stack[start : start + batch_size], dtype=np.float32)
        bad = ~np.isfinite(x)
        if bad.any():
            frame = start + int(np.argwhere(bad)[0][0])
            raise InputError(f"{name}: NaN/Inf pixels in frame {frame + 1}; fix or drop that frame")
        yield np.ascontiguousarray(pad_frames(x, multiple)[:, None])
