"""Reading and writing images: TIFF (tifffile) and ``.npy``, with checks a user can act on."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np
import tifffile

from efficientbioai.errors import InputError

IMAGE_SUFFIXES = (".tif", ".tiff", ".npy")


def list_images(spec: str | Path) -> list[Path]:
    """Image files named by ``spec``: one file, a folder (its TIFF/.npy files) or a glob; sorted."""
    path = Path(spec)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        files = sorted(Path(p) for p in glob.glob(str(spec)) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"no TIFF or .npy images found at {spec}")
    return files


def read_image(path: str | Path) -> np.ndarray:
    """Read a TIFF or ``.npy`` image as float32; reject unreadable files and NaN/Inf pixels.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> f = Path(tempfile.mkdtemp()) / "a.npy"; np.save(f, np.ones((4, 4)))
    >>> read_image(f).dtype
    dtype('float32')
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"image not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            data = tifffile.imread(path)
        elif suffix == ".npy":
            data = np.load(path, allow_pickle=False)
        else:
            raise InputError(f"{path}: unsupported image type {suffix!r}; use {', '.join(IMAGE_SUFFIXES)}")
    except InputError:
        raise
    except Exception as exc:  # tifffile/numpy raise many types for a corrupt file
        raise InputError(f"{path}: cannot read image ({type(exc).__name__}: {exc})") from None
    if data.size == 0:
        raise InputError(f"{path}: holds no pixels (corrupt or empty file)")
    if not np.issubdtype(data.dtype, np.number) or np.iscomplexobj(data):
        raise InputError(f"{path}: pixel type {data.dtype} is not a real number type")
    data = np.asarray(data, dtype=np.float32)
    bad = ~np.isfinite(data)
    if bad.any():
        raise InputError(f"{path}: {int(bad.sum())} pixels are NaN or Inf; fix or mask them first")
    return data


def write_tiff(path: str | Path, image: np.ndarray) -> Path:
    """Write ``image`` as TIFF atomically (temporary name, then rename): never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tifffile.imwrite(tmp, np.asarray(image), imagej=False)
    os.replace(tmp, path)
    return path
