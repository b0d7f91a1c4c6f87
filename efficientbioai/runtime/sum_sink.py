"""Per-chunk partial sums added into one image (Deep-STORM's super-resolution reconstruction).

The accumulator is small (the ×8 grid of one frame), so after every chunk it is saved whole
as the partial file (``.npy``, replaced atomically) — a resumed run reloads it and continues
with the next chunk. The final image is written by the task (``finish``), e.g. TIFF + PNG.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from efficientbioai.runtime.sink import Sink, crc32, partial_path


class SumSink(Sink):
    """Adds chunk results into a float32 image of ``shape``.

    Parameters
    ----------
    path : Path or None
        The final image file the task writes (its partial holds the accumulator).
    shape : tuple of int
        Accumulator shape.
    finish : callable
        ``finish(image) -> output`` (crop to the real size); ``write(output) -> Path`` writes it.
    """

    def __init__(
        self,
        path: Path | None,
        shape: tuple[int, ...],
        finish: Callable[[np.ndarray], np.ndarray],
        write: Callable[[np.ndarray], Path] | None = None,
        collect: bool = True,
    ) -> None:
        super().__init__(path, collect)
        self.shape = tuple(shape)
        self._crop, self._write_final = finish, write
        self.acc = np.zeros(self.shape, np.float32)

    def _partial(self) -> Path:
        return partial_path(self.path).with_suffix(".npy")

    def _has_partial(self) -> bool:
        return self._partial().exists()

    def _discard(self) -> None:
        self._partial().unlink(missing_ok=True)

    def _fresh(self) -> None:
        self.acc = np.zeros(self.shape, np.float32)

    def _restore(self, state: dict) -> int:
        """The saved accumulator if its CRC-32 is the journal's; else nothing verifies (start over:
        the accumulator holds only the latest sum, so there is no earlier chunk to cut back to)."""
        try:
            acc = np.load(self._partial(), allow_pickle=False)
        except (OSError, ValueError):
            return 0
        if acc.shape != self.shape or crc32(acc.tobytes()) != state.get("crc"):
            return 0
        self.acc = acc
        return int(state["done"])

    def _state(self) -> dict:
        return {"crc": crc32(self.acc.tobytes())}

    def _write(self, chunk: Any, result: np.ndarray) -> None:
        if result.shape != self.shape:
            raise ValueError(f"{chunk.describe()}: partial sum {result.shape} does not match the image {self.shape}")
        np.add(self.acc, result, out=self.acc)
        if self.path is not None:
            tmp = self._partial().with_name(self._partial().name + ".tmp.npy")
            with open(tmp, "wb") as f:
                np.save(f, self.acc)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._partial())

    def _finish(self) -> Any:
        out = self._crop(self.acc)
        if self.path is not None and self._write_final is not None:
            self._write_final(out)
            self._discard()
        return out if self.collect else self.path
