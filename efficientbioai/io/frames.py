"""Readers: frames and volumes read a chunk at a time, never the whole file.

Every source looks like a read-only array (``shape``, ``dtype``, ``len``, slicing along the
first axis) and hands out float32 copies checked for NaN/Inf, naming the file and frame at
fault. What makes each one bounded in memory:

- :class:`TiffSource` — an uncompressed, contiguous TIFF is memory-mapped *per chunk* (the
  mapping is dropped after the copy, so touched pages do not pile up in the resident set);
  any other TIFF is decoded page by page with tifffile's page cache off.
- :class:`ArraySource` — an array in memory, a ``.npy`` (mapped per chunk like a TIFF) or a
  zarr array (chunked reads).
- :class:`FolderSource` — a folder of single-frame files, in sorted order.

Sources pickle as their path (in-memory arrays as the array), so a chunk can be read in a
prefetch process or on a Dask worker. :func:`open_frames` picks the reader for a path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from efficientbioai.errors import InputError
from efficientbioai.io.images import read_image

#: Suffixes of single-frame files in a folder stack.
FRAME_SUFFIXES = (".tif", ".tiff", ".npy")

#: Smallest frame side the SMLM networks accept (DilatedLoc sees ~67 px, Deep-STORM trains on
#: 26-px patches; below 8 px nothing is left).
MIN_FRAME = 8


def check_finite(data: np.ndarray, name: str, first: int = 0) -> np.ndarray:
    """``data`` unchanged, or an :class:`InputError` naming the first frame with NaN/Inf pixels.

    Parameters
    ----------
    data : ndarray
        Frames along the first axis.
    name : str
        The file, for the message.
    first : int
        Index (0-based) of ``data[0]`` in the whole stack.
    """
    bad = ~np.isfinite(data)
    if bad.any():
        frame = first + int(np.argwhere(bad)[0][0])
        raise InputError(f"{name}: {int(bad.sum())} NaN/Inf pixels from frame {frame + 1}; fix or drop those frames")
    return data


def _check_dtype(dtype: np.dtype, name: str) -> np.dtype:
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
        raise InputError(f"{name}: pixel type {dtype} is not a real number type; save integers or floats")
    return dtype


class FrameSource:
    """A read-only array read on demand; subclasses implement :meth:`_read`."""

    name: str = "stack"
    shape: tuple[int, ...] = ()
    dtype: np.dtype = np.dtype(np.float32)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def frame_bytes(self) -> int:
        """Raw bytes of one frame on disk (for MB/s of raw data)."""
        return int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def _read(self, start: int, stop: int) -> np.ndarray:
        raise NotImplementedError

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start..stop-1`` as a float32 array, checked for NaN/Inf."""
        start, stop = max(0, start), min(len(self), stop)
        try:
            raw = self._read(start, stop)
        except InputError:
            raise
        except Exception as exc:  # a truncated or corrupt file fails here, mid-stack
            raise InputError(
                f"{self.name}: cannot read frames {start + 1}-{stop} ({type(exc).__name__}: {exc})"
            ) from None
        return check_finite(np.asarray(raw, dtype=np.float32), self.name, start)

    def __getitem__(self, key: Any) -> np.ndarray:
        """Numpy-style indexing; the first axis must be a slice or an integer."""
        key = key if isinstance(key, tuple) else (key,)
        first, rest = key[0], key[1:]
        if isinstance(first, (int, np.integer)):
            i = int(first) + (len(self) if first < 0 else 0)
            return self.read(i, i + 1)[(0, *rest)]
        if not isinstance(first, slice):
            raise TypeError(f"{type(self).__name__} is indexed by a slice or an integer on its first axis")
        start, stop, step = first.indices(len(self))
        if step < 0:  # reversed: read forwards, then flip
            return self[slice(stop + 1, start + 1)][::-1][(slice(None), *rest)]
        return self.read(start, stop)[(slice(None, None, step), *rest)]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self.read(0, len(self))
        return out if dtype is None else out.astype(dtype)

    def close(self) -> None:
        """Release file handles (reopened on the next read)."""


class ArraySource(FrameSource):
    """An array in memory, a zarr array, or a ``.npy`` file memory-mapped one chunk at a time."""

    def __init__(self, array: Any, name: str = "array", path: str | Path | None = None) -> None:
        self.name = name
        self.path = Path(path) if path is not None else None
        self.shape = tuple(int(s) for s in array.shape)
        self.dtype = _check_dtype(array.dtype, name)
        mapped = isinstance(array, np.memmap) and self.path is not None and array.flags.c_contiguous
        self._offset = int(array.offset) if mapped else None  # remap per chunk instead of keeping the whole mapping
        self._array = None if mapped else array

    def _read(self, start: int, stop: int) -> np.ndarray:
        if self._array is not None:
            return np.asarray(self._array[start:stop])
        return _mapped_copy(self.path, self.dtype, self._offset, self.shape, start, stop)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if self._array is not None and self.path is not None and not isinstance(self._array, np.ndarray):
            state["_array"] = None  # a zarr array: reopened from its path
            state["_zarr"] = True
        return state

    def __setstate__(self, state: dict) -> None:
        zarr_path = state.pop("_zarr", False)
        self.__dict__.update(state)
        if zarr_path:
            self._array = _open_zarr(self.path)


def _mapped_copy(path: Path, dtype: np.dtype, offset: int, shape: tuple[int, ...], start: int, stop: int) -> np.ndarray:
    """Frames ``start..stop-1`` of a contiguous file through a mapping that is closed afterwards."""
    frame = int(np.prod(shape[1:], dtype=np.int64))
    if stop <= start:
        return np.zeros((0, *shape[1:]), dtype)
    at = offset + start * frame * dtype.itemsize
    mm = np.memmap(path, dtype=dtype, mode="r", offset=at, shape=(stop - start,) + shape[1:])
    out = np.array(mm)
    del mm  # unmapped now (the last reference): its pages leave the resident set
    return out


class TiffSource(FrameSource):
    """A TIFF stack: mapped per chunk when contiguous and uncompressed, else decoded page by page."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        self._tif = None
        tif = self._open()
        series = tif.series[0]
        self._pages = len(series.shape) == 2 and len(tif.pages) > 1  # frames written as separate series
        self.shape = (len(tif.pages), *series.shape) if self._pages else tuple(int(s) for s in series.shape)
        self.dtype = _check_dtype(series.dtype, self.name)
        native = tif.byteorder == "<" or self.dtype.itemsize == 1
        self._offset = series.dataoffset if native and not self._pages else None
        self._paged = self._pages or (len(self.shape) >= 3 and len(series) == self.shape[0])
        if self._offset is not None:
            self.close()  # mapped reads need no open handle

    @property
    def mapped(self) -> bool:
        """Read through per-chunk memory maps (an uncompressed, contiguous file)."""
        return self._offset is not None

    def _open(self):
        if self._tif is None:
            if not self.path.is_file():
                raise InputError(f"stack not found: {self.path}")
            try:
                self._tif = tifffile.TiffFile(self.path)
                self._tif.series[0]  # parses the first IFD: a corrupt header fails here
            except Exception as exc:  # tifffile raises many types for a corrupt file
                self._tif = None
                raise InputError(f"{self.path}: cannot read TIFF ({type(exc).__name__}: {exc})") from None
        return self._tif

    def _read(self, start: int, stop: int) -> np.ndarray:
        if self._offset is not None:
            return _mapped_copy(self.path, self.dtype, self._offset, self.shape, start, stop)
        tif = self._open()
        pages = tif.pages if self._pages else tif.series[0]
        if self._paged:  # one page per frame, decoded one at a time (tifffile's page cache is off)
            frames = [pages[i].asarray() for i in range(start, stop)]
            for i, frame in enumerate(frames, start):
                if frame.shape != self.shape[1:]:
                    raise InputError(f"{self.name}: page {i + 1} is {frame.shape}, the first is {self.shape[1:]}")
            return np.stack(frames).reshape((stop - start,) + self.shape[1:])
        return pages.asarray()[start:stop]  # one multi-frame page: tifffile has to read it whole

    def close(self) -> None:
        if self._tif is not None:
            self._tif.close()
            self._tif = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_tif": None}


class FolderSource(FrameSource):
    """A stack made of one file per frame (TIFF or ``.npy``), in sorted name order."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder)
        self.name = str(self.path)
        self.files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
        if not self.files:
            raise InputError(f"{self.path}: no frame files ({', '.join(FRAME_SUFFIXES)}) in this folder")
        first = read_image(self.files[0])
        if first.ndim != 2:
            raise InputError(f"{self.files[0]}: a folder stack needs one 2D frame per file; got shape {first.shape}")
        self.shape = (len(self.files), *first.shape)
        self.dtype = np.dtype(np.float32)

    def _read(self, start: int, stop: int) -> np.ndarray:
        frames = [read_image(f) for f in self.files[start:stop]]
        for f, frame in zip(self.files[start:stop], frames):
            if frame.shape != self.shape[1:]:
                raise InputError(f"{f}: frame shape {frame.shape} differs from the first frame's {self.shape[1:]}")
        return np.stack(frames) if frames else np.zeros((0, *self.shape[1:]), np.float32)


def _open_zarr(path: Path):
    try:
        import zarr
    except ImportError:
        raise InputError(f"{path}: reading zarr needs the 'dist' extra (pip install 'efficientbioai[dist]')") from None
    try:
        return zarr.open_array(str(path), mode="r")
    except Exception as exc:
        raise InputError(f"{path}: cannot open as a zarr array ({type(exc).__name__}: {exc})") from None


def is_zarr(path: Path) -> bool:
    """A zarr array folder (v2 ``.zarray`` or v3 ``zarr.json``) or a ``*.zarr`` path."""
    return path.suffix.lower() == ".zarr" or (path / "zarr.json").is_file() or (path / ".zarray").is_file()


def open_frames(path: str | Path) -> FrameSource:
    """The reader for ``path``: a TIFF, ``.npy``, zarr array, or a folder of one file per frame.

    Raises
    ------
    InputError
        The path does not exist, or it is not a readable stack (the message says why).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"stack not found: {path}")
    suffix = path.suffix.lower()
    if is_zarr(path):
        return ArraySource(_open_zarr(path), str(path), path)
    if path.is_dir():
        return FolderSource(path)
    if suffix in (".tif", ".tiff"):
        return TiffSource(path)
    if suffix == ".npy":
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except Exception as exc:
            raise InputError(f"{path}: cannot read .npy ({type(exc).__name__}: {exc})") from None
        return ArraySource(array, str(path), path)
    raise InputError(f"{path}: unsupported stack type {suffix!r}; use .tif, .npy, a .zarr array or a folder of frames")


def check_movie(stack: Any, name: str, what: str = "an SMLM stack", one_frame: bool = True) -> FrameSource:
    """``stack`` as a ``(frames, height, width)`` :class:`FrameSource`, or an :class:`InputError`
    saying what to change. A 2D image is one frame when ``one_frame``; pixels are not read
    (they are checked chunk by chunk as they are)."""
    if stack.ndim == 2 and one_frame:
        stack = np.asarray(stack)[None]
    shape = tuple(stack.shape)
    if len(shape) != 3:
        hint = " (a single 2D image: this model needs many frames)" if len(shape) == 2 else ""
        raise InputError(f"{name}: {what} must be 3D (frames, height, width); got shape {shape}{hint}")
    _check_dtype(stack.dtype, name)
    if shape[0] == 0:
        raise InputError(f"{name}: the stack has no frames")
    if min(shape[1:]) < MIN_FRAME:
        raise InputError(f"{name}: frames of {shape[1]}×{shape[2]} px are smaller than the minimum {MIN_FRAME} px")
    return as_source(stack, name)


def as_source(stack: Any, name: str = "stack") -> FrameSource:
    """``stack`` as a :class:`FrameSource` (sources pass through; arrays and lazy stacks are wrapped)."""
    if isinstance(stack, FrameSource):
        return stack
    path = getattr(stack, "path", None) if not isinstance(stack, np.ndarray) else None
    if path is not None and Path(path).suffix.lower() in (".tif", ".tiff") and os.path.isfile(path):
        return TiffSource(path)
    if isinstance(stack, np.memmap) and getattr(stack, "filename", None):
        return ArraySource(stack, name, stack.filename)
    return ArraySource(stack, name)
