"""int8 calibration inputs from the user's own movies (SMLM, Deep-STORM): raw frames at the tile size.

A localizer sees raw camera frames, so calibration must too: the frames are taken evenly
spaced through the movies named by ``data.calibration.inputs`` (a file, a folder of 2D frames
or a glob, read as :mod:`efficientbioai.io.inputs` reads movies), each cropped to the tile
at a seeded position, with ``channels`` consecutive frames around it when the model takes
temporal context. Frames smaller than the tile are edge-padded.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from efficientbioai.config import SplitSection
from efficientbioai.errors import InputError
from efficientbioai.io.frames import open_frames
from efficientbioai.io.inputs import MOVIE_READING, assumed, movie_inputs


def movie_calibration(
    spec: SplitSection, tile: tuple[int, int], channels: int, seed: int, convert=None
) -> Iterator[np.ndarray]:
    """``spec.num_samples`` float32 arrays ``(1, channels, *tile)`` cut from the user's movies;
    ``convert`` (e.g. the acquisition camera's conversion) is applied to whole frames first."""
    movies = []
    for path in movie_inputs(spec.inputs):
        with assumed(MOVIE_READING):
            movie = open_frames(path)
            if movie.ndim != 3:
                raise InputError(f"{path}: calibration movies must be (frames, height, width); got {movie.shape}")
        movies.append(movie)
    total = sum(len(m) for m in movies)
    if total == 0:
        raise InputError(f"data.calibration: the movies at {spec.inputs} hold no frames")
    rng = np.random.default_rng(seed)
    half = channels // 2
    for k in np.linspace(0, total - 1, spec.num_samples).round().astype(int):
        for movie in movies:  # global frame index k → (movie, frame)
            if k < len(movie):
                break
            k -= len(movie)
        lo, hi = max(0, k - half), min(len(movie), k + half + 1)
        window = np.asarray(movie[lo:hi], np.float32)
        idx = np.clip(np.arange(k - half, k + half + 1), lo, hi - 1) - lo  # edge frames repeated
        window = window[idx] if convert is None else convert(window[idx])
        pad = [(0, 0)] + [(0, max(0, t - s)) for t, s in zip(tile, window.shape[1:])]
        window = np.pad(window, pad, mode="edge")
        r, c = (int(rng.integers(0, s - t + 1)) for s, t in zip(window.shape[1:], tile))
        yield np.ascontiguousarray(window[None, :, r : r + tile[0], c : c + tile[1]])
