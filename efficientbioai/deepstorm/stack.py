"""Deep-STORM's stack check and its network input batches.

Stacks are read lazily by :mod:`efficientbioai.io.frames`; :func:`check_stack` validates what
can be known without reading pixels (dimensions, dtype, size) and an in-memory array's pixels;
:func:`frame_batches` cuts padded network inputs and names a frame with NaN/Inf.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from efficientbioai.deepstorm.data import pad_frames
from efficientbioai.errors import InputError
from efficientbioai.io.frames import FrameSource, check_finite, check_movie


def check_stack(stack, name: str = "stack") -> FrameSource:
    """``stack`` as a usable ``(frames, height, width)`` source of real numbers.

    Raises :class:`InputError` saying what to change (:func:`~efficientbioai.io.frames.check_movie`:
    not 3D, a non-numeric dtype, no frames, frames smaller than ``MIN_FRAME``). In-memory arrays
    are also checked for NaN/Inf here; lazy stacks are checked chunk by chunk as they are read.
    """
    source = check_movie(stack, name, "a Deep-STORM stack", one_frame=False)
    if isinstance(stack, np.ndarray) and not isinstance(stack, np.memmap):
        bad = ~np.isfinite(stack)
        if bad.any():
            frame = int(np.argwhere(bad)[0][0])
            raise InputError(
                f"{name}: {int(bad.sum())} NaN/Inf pixels (first in frame {frame + 1}); fix or drop those frames"
            )
    return source


def frame_batches(stack, batch_size: int, multiple: int, name: str = "stack") -> Iterator[np.ndarray]:
    """``(n, 1, H', W')`` float32 batches in order, padded to ``multiple`` and checked for NaN/Inf."""
    for start in range(0, len(stack), batch_size):
        x = check_finite(np.asarray(stack[start : start + batch_size], dtype=np.float32), name, start)
        yield np.ascontiguousarray(pad_frames(x, multiple)[:, None])
