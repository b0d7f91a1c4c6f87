"""Blocks of an image or volume written into place: in memory, a TIFF written in place, or zarr.

The output array is created when the first block arrives (its channels and dtype come from the
task's output), under the partial name. A TIFF is created uncompressed and contiguous and each
block is written through a memory map opened for that block only (so written pages do not
accumulate in the resident set); a zarr array gets one chunk per block. Blocks are written in
order; the journal records each block's place and a CRC-32 of its values, checked on resume.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from efficientbioai.errors import ConfigError
from efficientbioai.runtime.sink import Sink, crc32, partial_path


class BlockSink(Sink):
    """Places each block's core into an output of shape ``(*lead, *spatial)``.

    Parameters
    ----------
    path : Path or None
        Final file (``.tif`` or ``.zarr``); None keeps the output in memory.
    spatial : tuple of int
        Spatial shape of the whole output.
    block : tuple of int
        Core block size (zarr chunking).
    """

    def __init__(self, path: Path | None, spatial: tuple[int, ...], block: tuple[int, ...], collect: bool = True):
        super().__init__(path, collect)
        self.spatial, self.block = tuple(spatial), tuple(block)
        self.format = "memory" if path is None else ("zarr" if Path(path).suffix == ".zarr" else "tiff")
        self.shape: tuple[int, ...] | None = None
        self.dtype: np.dtype | None = None
        self._memory: np.ndarray | None = None
        self._blocks: list[list] = []  # per written block: [core as [start, stop] per axis, crc32 of its values]

    def _fresh(self) -> None:
        self.shape, self.dtype, self._memory, self._blocks = None, None, None, []

    def _restore(self, state: dict) -> int:
        """Keep the leading blocks whose values read back with the journal's CRC-32s."""
        if not state.get("shape"):
            return 0
        self.shape, self.dtype = tuple(state["shape"]), np.dtype(state["dtype"])
        self._blocks = []
        for core, crc in state.get("blocks", []):
            where = (Ellipsis, *(slice(a, b) for a, b in core))
            try:
                values = self._read_partial(where)
            except Exception:  # a truncated or corrupt partial file: nothing after this verifies
                break
            if crc32(np.ascontiguousarray(values, self.dtype).tobytes()) != crc:
                break
            self._blocks.append([core, crc])
        return len(self._blocks)

    def _read_partial(self, where: tuple) -> np.ndarray:
        if self.format == "tiff":
            mm = tifffile.memmap(partial_path(self.path), mode="r")
            values = np.array(mm[where])
            del mm
            return values
        return np.asarray(_zarr().open_array(str(partial_path(self.path)), mode="r")[where])

    def _state(self) -> dict:
        if not self.shape:
            return {}
        return {"shape": list(self.shape), "dtype": str(self.dtype), "blocks": self._blocks}

    def _create(self, result: np.ndarray) -> None:
        lead = result.shape[: result.ndim - len(self.spatial)]
        self.shape, self.dtype = (*lead, *self.spatial), result.dtype
        if self.format == "memory":
            self._memory = np.zeros(self.shape, self.dtype)
        elif self.format == "tiff":
            tifffile.imwrite(partial_path(self.path), shape=self.shape, dtype=self.dtype, photometric="minisblack")
        else:
            zarr = _zarr()
            chunks = (*lead, *self.block)
            zarr.open_array(str(partial_path(self.path)), mode="w", shape=self.shape, chunks=chunks, dtype=self.dtype)

    def _write(self, chunk: Any, result: np.ndarray) -> None:
        if self.shape is None:
            self._create(result)
        where = (Ellipsis, *chunk.core)
        if self.format != "memory":
            core = [[s.start, s.stop] for s in chunk.core]
            self._blocks.append([core, crc32(np.ascontiguousarray(result, self.dtype).tobytes())])
        if self.format == "memory":
            self._memory[where] = result
        elif self.format == "tiff":
            mm = tifffile.memmap(partial_path(self.path), mode="r+")
            mm[where] = result
            mm.flush()
            del mm  # unmapped now: written pages leave the resident set
            with open(partial_path(self.path), "rb+") as f:
                os.fsync(f.fileno())
        else:
            _zarr().open_array(str(partial_path(self.path)), mode="r+")[where] = result

    def _finish(self) -> Any:
        if self.format == "memory":
            return self._memory
        final, part = self.path, partial_path(self.path)
        if final.is_dir():
            shutil.rmtree(final)
        os.replace(part, final)
        return self._read_back() if self.collect else final

    def _read_back(self) -> np.ndarray:
        if self.format == "tiff":
            return tifffile.imread(self.path)
        return np.asarray(_zarr().open_array(str(self.path), mode="r")[...])


def _zarr():
    try:
        import zarr
    except ImportError:
        raise ConfigError(
            "runtime.output_format 'zarr' needs the 'dist' extra: pip install 'efficientbioai[dist]'"
        ) from None
    return zarr
