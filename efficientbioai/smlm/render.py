"""Super-resolution images from localizations: a 2D histogram or Gaussian spots, on a chosen grid.

The grid origin is the camera's top-left corner (x = y = 0 nm), so a rendering lines up with
the raw frames scaled by ``camera_pixel / render_pixel``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from efficientbioai.io.images import write_tiff


def render(
    locs: np.ndarray,
    field_nm: tuple[float, float],
    pixel_size: float = 10.0,
    method: str = "histogram",
    sigma_nm: float | None = None,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Render localizations (columns ``frame, x, y, ...`` in nm) into a ``float32`` image.

    Parameters
    ----------
    locs : ndarray
        Localization table (frame, x, y, ...).
    field_nm : (float, float)
        Height and width of the field of view in nm.
    pixel_size : float
        Rendering pixel size in nm.
    method : {"histogram", "gaussian"}
        Counts per pixel, or each localization as a normalised Gaussian of ``sigma_nm``
        (default: the table's uncertainty column when present, else 2 render pixels).
    weights : ndarray, optional
        Per-localization weights (e.g. photons); default 1.

    Examples
    --------
    >>> img = render(np.array([[1, 15.0, 25.0]]), (100, 100), pixel_size=10)
    >>> img.shape, float(img[2, 1])
    ((10, 10), 1.0)
    """
    if method not in ("histogram", "gaussian"):
        raise ValueError(f"method must be 'histogram' or 'gaussian', got {method!r}")
    if pixel_size <= 0:
        raise ValueError(f"pixel_size must be positive, got {pixel_size}")
    locs = np.asarray(locs, dtype=np.float64)
    if locs.size == 0:
        locs = np.zeros((0, 3))
    if locs.ndim != 2 or locs.shape[1] < 3:
        raise ValueError(f"locs must be a table with columns frame, x, y (nm); got shape {locs.shape}")
    h, w = (int(np.ceil(f / pixel_size)) for f in field_nm)
    x, y = locs[:, 1], locs[:, 2]
    wts = np.ones(len(locs)) if weights is None else np.asarray(weights, float)
    img, _, _ = np.histogram2d(y, x, bins=(h, w), range=((0, h * pixel_size), (0, w * pixel_size)), weights=wts)
    if method == "gaussian":
        if sigma_nm is None:
            unc = locs[:, 5] if locs.shape[1] > 5 else np.array([])
            sigma_nm = float(np.nanmedian(unc)) if unc.size and np.isfinite(unc).any() else 2 * pixel_size
        img = ndimage.gaussian_filter(img, sigma_nm / pixel_size, mode="constant")
    return img.astype(np.float32)


def save_rendering(image: np.ndarray, path: str | Path, percentile: float = 99.5) -> tuple[Path, Path]:
    """Write the rendering as float TIFF and as an 8-bit PNG (contrast at ``percentile``)."""
    from PIL import Image

    path = Path(path)
    tif = write_tiff(path.with_suffix(".tif"), image)
    top = np.percentile(image[image > 0], percentile) if (image > 0).any() else 1.0
    png = path.with_suffix(".png")
    tmp = png.with_name(f".{png.name}.partial")
    Image.fromarray((np.clip(image / top, 0, 1) * 255).astype(np.uint8)).save(tmp, format="PNG")
    tmp.replace(png)
    return tif, png
