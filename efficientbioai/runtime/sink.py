"""``Sink``: where chunk results go, written under a temporary name and renamed when complete.

Every file sink writes ``.<name>.partial`` next to the final file and keeps a journal,
``.<name>.journal.json``, updated after each chunk is safely on disk (flushed and fsync'ed):
which chunks are done and what the partial file looked like then, with a CRC-32 per chunk. An
interrupted run leaves both; ``resume`` checks the partial file against the journal, cuts back
to the last chunk whose bytes still verify (a journal claiming more than the file holds is not
trusted) and continues from there, provided the input, the model and the chunking are unchanged
(the fingerprint). The final name only ever holds a complete output; the journal is removed with
the rename, so an output folder holds only finished files once a run completes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import zlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from efficientbioai.errors import ConfigError

log = logging.getLogger(__name__)


class Journal:
    """A small JSON record replaced atomically (temporary file, fsync, rename)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def save(self, state: dict) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def crc32(data: bytes) -> int:
    """The journal's per-chunk checksum."""
    return zlib.crc32(data) & 0xFFFFFFFF


def partial_path(final: Path) -> Path:
    """``folder/.name.partial`` for ``folder/name``."""
    return final.with_name(f".{final.name}.partial")


class Sink(ABC):
    """Receives chunk results in chunk order; memory-only when ``path`` is None.

    Subclasses implement :meth:`_fresh`, :meth:`_restore`, :meth:`_write` and :meth:`_finish`.
    """

    def __init__(self, path: Path | None, collect: bool = True) -> None:
        self.path = Path(path) if path is not None else None
        self.collect = collect
        self.journal = Journal(self.path.with_name(f".{self.path.name}.journal.json")) if self.path else None
        self.done = 0
        self.fingerprint: dict = {}

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, fingerprint: dict, resume: bool, total: int) -> int:
        """Open the output; returns how many leading chunks are already written (resume)."""
        self.fingerprint = json.loads(json.dumps(fingerprint, default=str))
        self.total = total
        if self.path is None:
            self._fresh()
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        state = self.journal.load() if resume else None
        if state is not None and self._has_partial():
            _same_run(state.get("fingerprint", {}), self.fingerprint, self.path)
            claimed = int(state["done"])
            self.done = self._restore(state)
            if self.done < claimed:
                log.warning(
                    "%s: the journal records %d finished chunk(s) but only %d verify against the partial file; "
                    "resuming after chunk %d",
                    self.path,
                    claimed,
                    self.done,
                    self.done,
                )
            if self.done == 0:
                self.close()  # the partial _restore reopened
                self._discard()
                self._fresh()
            self._save()
            log.info("resuming %s after chunk %d of %d", self.path, self.done, total)
            return self.done
        if resume:
            log.info("nothing to resume for %s: starting from the first chunk", self.path)
        self._discard()
        self._fresh()
        self.done = 0
        self._save()
        return 0

    def write(self, chunk: Any, result: Any) -> None:
        """Add one chunk's result (chunks arrive in order); durable before the journal moves on."""
        self._write(chunk, result)
        self.done = chunk.index + 1
        if self.path is not None:
            self._save()

    def finish(self) -> Any:
        """Complete the output (rename into place); returns the output when ``collect``."""
        out = self._finish()
        if self.journal is not None:
            self.journal.remove()
        return out

    def close(self) -> None:  # noqa: B027  (only sinks with an open file override it)
        """Stop without completing: the partial file and journal stay for ``resume``."""

    # -- for subclasses --------------------------------------------------------------------------
    def _save(self) -> None:
        self.journal.save({"fingerprint": self.fingerprint, "done": self.done, **self._state()})

    def _state(self) -> dict:
        """Extra journal fields describing the partial output after the last chunk."""
        return {}

    def _has_partial(self) -> bool:
        return partial_path(self.path).exists()

    def _discard(self) -> None:
        part = partial_path(self.path)
        if part.is_dir():
            shutil.rmtree(part)
        else:
            part.unlink(missing_ok=True)

    @abstractmethod
    def _fresh(self) -> None:
        """Start an empty output."""

    @abstractmethod
    def _restore(self, state: dict) -> int:
        """Reopen the partial output as the journal recorded it, cut back to the leading chunks
        whose bytes verify against the journal's checksums; returns how many those are."""

    @abstractmethod
    def _write(self, chunk: Any, result: Any) -> None:
        """Append or place one chunk's result, durably."""

    @abstractmethod
    def _finish(self) -> Any:
        """Rename into place; return the output if :attr:`collect`."""


def _same_run(old: dict, new: dict, path: Path) -> None:
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if changed:
        raise ConfigError(
            f"cannot resume {path}: {', '.join(changed)} changed since the interrupted run "
            f"(was {[old.get(k) for k in changed]}, now {[new.get(k) for k in changed]}); "
            "run without --resume to start again"
        )
