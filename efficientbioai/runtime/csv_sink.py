"""Localizations appended to a ThunderSTORM CSV one chunk at a time.

The file is byte-identical to :func:`efficientbioai.smlm.io.write_thunderstorm` on the whole
table (same header, quoting, ids from 1), but it grows chunk by chunk: each chunk's rows are
appended, flushed and fsync'ed before the journal records the new length, so a resumed run
truncates whatever an interrupted write left after that length and carries on.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from efficientbioai.runtime.sink import Sink, crc32, partial_path
from efficientbioai.smlm.io import THUNDERSTORM_HEADER, read_localizations

#: Columns of a localization table in the runtime: frame, x, y, z, photons, uncertainty, score.
TABLE_COLUMNS = 7


def _csv_bytes(rows: Any) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, quoting=csv.QUOTE_NONNUMERIC).writerows(rows)
    return buf.getvalue().encode()


def _row_bytes(table: np.ndarray, first_id: int) -> bytes:
    """Rows as ``csv.writer(quoting=QUOTE_NONNUMERIC)`` writes ``[id, int(frame), *floats]``, ~10× faster.

    Numbers are never quoted and floats are written as ``repr`` — what the csv module does — so
    the bytes equal :func:`~efficientbioai.smlm.io.write_thunderstorm`'s.
    """
    ids = range(first_id, first_id + len(table))
    frames = table[:, 0].astype(np.int64).tolist()
    values = table[:, 1:6].tolist()
    return "".join(f"{i},{f},{','.join(map(repr, v))}\r\n" for i, f, v in zip(ids, frames, values)).encode()


def empty_table() -> np.ndarray:
    return np.zeros((0, TABLE_COLUMNS))


class CsvTableSink(Sink):
    """Appends each chunk's localization table (``frame, x, y, z, photons, uncertainty, score``).

    The score column is not written (ThunderSTORM has no such column); a table read back after a
    resume has NaN there.
    """

    def __init__(self, path: Path | None, collect: bool = True) -> None:
        super().__init__(path, collect)
        self.rows = 0
        self.tables: list[np.ndarray] = []
        self._file = None
        self._chunks: list[list[int]] = []  # per written chunk: [end byte, rows so far, crc32 of its bytes]

    def _fresh(self) -> None:
        self.rows, self.tables, self._chunks = 0, [], []
        if self.path is not None:
            self._file = open(partial_path(self.path), "wb")
            self._file.write(_csv_bytes([THUNDERSTORM_HEADER]))
            self._sync()
            self._header = self._file.tell()

    def _restore(self, state: dict) -> int:
        """Keep the leading chunks whose bytes match the journal's CRC-32s; truncate the rest."""
        part = partial_path(self.path)
        if "header" not in state:  # a journal without checksums: nothing can be verified
            self._file = open(part, "ab")
            return 0
        self._header, verified, end, rows = int(state["header"]), [], int(state["header"]), 0
        with open(part, "rb") as f:
            for chunk_end, chunk_rows, crc in state.get("chunks", []):
                f.seek(end)
                if chunk_end < end or crc32(f.read(chunk_end - end)) != crc:
                    break
                verified.append([chunk_end, chunk_rows, crc])
                end, rows = chunk_end, chunk_rows
        os.truncate(part, end)  # drop bytes of chunks the journal never recorded or that do not verify
        self._chunks, self.rows = verified, rows
        self.tables = [_with_score(read_localizations(part))] if self.collect and self.rows else []
        self._file = open(part, "ab")
        return len(verified)

    def _state(self) -> dict:
        return {"header": self._header, "chunks": self._chunks}

    def _write(self, chunk: Any, table: np.ndarray) -> None:
        if self.collect:
            self.tables.append(table)
        data = _row_bytes(table, self.rows + 1) if len(table) else b""
        if self._file is not None:
            self._file.write(data)
            self._sync()
            self._chunks.append([self._file.tell(), self.rows + len(table), crc32(data)])
        self.rows += len(table)

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def _finish(self) -> Any:
        if self._file is not None:
            self.close()
            os.replace(partial_path(self.path), self.path)
        if not self.collect:
            return self.path
        return np.concatenate(self.tables) if self.tables else empty_table()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _with_score(table: np.ndarray) -> np.ndarray:
    """A table read from CSV (6 columns) with a NaN score column."""
    return np.column_stack([table, np.full(len(table), np.nan)]) if len(table) else empty_table()
