"""What one input is: the rule that turns a file, a folder or a glob into the inputs a task runs on.

- **Image tasks** (denoise, segment, instance): every file is one independent image (or
  volume), whatever its neighbours' sizes. A folder or glob is a set of images, run one by one.
- **Movie tasks** (SMLM localization, Deep-STORM): a file is one movie (frames first). A folder
  of 2D frames, one per file, is *one* movie in sorted name order (how cameras and Micro-Manager
  save acquisitions); a folder of multi-frame files is a set of movies. A zarr array is one movie.

:data:`IMAGE_READING` and :data:`MOVIE_READING` say the rule in a sentence, for shape errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import tifffile

from efficientbioai.errors import InputError
from efficientbioai.io.frames import is_zarr
from efficientbioai.io.images import list_images

IMAGE_READING = "read as one image: each file is one image, a folder or glob is a set of images run one by one"
MOVIE_READING = (
    "read as one movie (frames first): a folder of 2D frames, one per file, is one movie; "
    "a folder of multi-frame files is one movie per file"
)


def file_shape(path: Path) -> tuple[int, ...]:
    """The array shape stored in a TIFF or ``.npy`` file, read from its header only."""
    try:
        if path.suffix.lower() == ".npy":
            return tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape)
        with tifffile.TiffFile(path) as tif:
            return tuple(tif.series[0].shape)
    except Exception as exc:  # a corrupt header: say which file
        raise InputError(f"{path}: cannot read the image header ({type(exc).__name__}: {exc})") from None


def movie_inputs(spec: str | Path) -> list[Path]:
    """The movies named by ``spec``: ``[folder]`` for a folder of 2D frames or a zarr array,
    else one path per file.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> for i in range(3): np.save(folder / f"frame{i:03d}.npy", np.zeros((16, 16)))
    >>> movie_inputs(folder) == [folder]
    True
    """
    path = Path(spec)
    if path.exists() and is_zarr(path):
        return [path]
    files = list_images(spec)
    if path.is_dir() and len(file_shape(files[0])) == 2:
        return [path]
    return files


@contextmanager
def assumed(reading: str) -> Iterator[None]:
    """Append the reading rule to any :class:`InputError` raised inside: a shape error then says
    how the input was read, and so what to change."""
    try:
        yield
    except InputError as exc:
        raise InputError(f"{exc} ({reading})") from None
