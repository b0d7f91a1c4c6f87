"""Localization files: ThunderSTORM-compatible CSV and the SMLM-challenge layout.

Internally a localization table is a float array with the columns of :data:`COLUMNS`
(frame 1-based, positions in nm). Readers accept the column spellings found in the wild
(``uncertainty_xy [nm]``, the challenge's ``"intensity "`` with a trailing space) and fail with
a message naming the missing columns.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from efficientbioai.errors import InputError

#: Columns of a localization table, in order.
COLUMNS = ("frame", "x", "y", "z", "photons", "uncertainty")

THUNDERSTORM_HEADER = ("id", "frame", "x [nm]", "y [nm]", "z [nm]", "intensity [photon]", "uncertainty [nm]")
CHALLENGE_HEADER = ("Ground-truth", "frame", "xnano", "ynano", "znano", "intensity ")

_ALIASES = {
    "frame": ("frame",),
    "x": ("x [nm]", "xnano", "x_nm", "x"),
    "y": ("y [nm]", "ynano", "y_nm", "y"),
    "z": ("z [nm]", "znano", "z_nm", "z"),
    "photons": ("intensity [photon]", "intensity", "photons"),
    "uncertainty": ("uncertainty [nm]", "uncertainty_xy [nm]", "uncertainty"),
}
_REQUIRED = ("frame", "x", "y")


def _as_table(locs: np.ndarray) -> np.ndarray:
    locs = np.asarray(locs, dtype=np.float64)
    if locs.size == 0:
        return np.zeros((0, len(COLUMNS)))
    if locs.ndim != 2 or not 3 <= locs.shape[1] <= len(COLUMNS):
        raise ValueError(f"a localization table has columns {COLUMNS[:3]}..{COLUMNS}; got shape {locs.shape}")
    out = np.full((len(locs), len(COLUMNS)), np.nan)
    out[:, 3] = 0.0
    out[:, : locs.shape[1]] = locs
    return out


def _write_rows(path: Path, header: tuple[str, ...], rows) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_NONNUMERIC)
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(tmp, path)
    return path


def write_thunderstorm(path: str | Path, locs: np.ndarray) -> Path:
    """Write a ThunderSTORM-compatible CSV (quoted header, ``id`` from 1), atomically."""
    t = _as_table(locs)
    rows = ([i + 1, int(r[0]), *(float(v) for v in r[1:])] for i, r in enumerate(t))
    return _write_rows(Path(path), THUNDERSTORM_HEADER, rows)


def write_challenge(path: str | Path, locs: np.ndarray) -> Path:
    """Write the SMLM-challenge layout (``Ground-truth, frame, xnano, ynano, znano, intensity``)."""
    t = _as_table(locs)
    rows = ([i + 1, int(r[0]), *(float(v) for v in r[1:5])] for i, r in enumerate(t))
    return _write_rows(Path(path), CHALLENGE_HEADER, rows)


def read_localizations(path: str | Path) -> np.ndarray:
    """Read ThunderSTORM or challenge CSV into a table with the columns of :data:`COLUMNS`.

    A missing ``z`` is 0, missing photons/uncertainty are NaN. A file without a header is read
    as the challenge layout.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"localization file not found: {path}")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise InputError(f"{path}: empty file")
    numeric = _numeric(rows[0])
    header = [h.strip() for h in (CHALLENGE_HEADER if numeric else rows[0])]
    data = rows if numeric else rows[1:]
    lowered = [h.lower() for h in header]
    found = {col: [name for name in names if name in lowered] for col, names in _ALIASES.items()}  # names: lower case
    index = {col: lowered.index(names[0]) for col, names in found.items() if names}
    missing = [c for c in _REQUIRED if c not in index]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {missing}; found {header}. Expected ThunderSTORM "
            f"({', '.join(THUNDERSTORM_HEADER)}) or challenge ({', '.join(CHALLENGE_HEADER)}) columns"
        )
    out = np.full((len(data), len(COLUMNS)), np.nan)
    out[:, 3] = 0.0
    try:
        for j, col in enumerate(COLUMNS):
            if col in index:
                out[:, j] = [float(r[index[col]]) for r in data]
    except (ValueError, IndexError) as exc:
        raise InputError(f"{path}: a row is not numeric or is short ({exc})") from None
    return out


def _numeric(row: list[str]) -> bool:
    try:
        [float(v) for v in row]
    except ValueError:
        return False
    return True
