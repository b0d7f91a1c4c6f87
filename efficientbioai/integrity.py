"""Every artefact a run loads is the one compress wrote: checked against ``manifest.json``.

``compress`` records the SHA-256 of every artefact file. Before a run loads any of them,
:func:`check_artefacts` hashes the files (streamed, 1 MiB at a time) and compares. Hashes are
cached in ``<exp>/.sha256_cache.json`` by size and modification time, so a multi-GB engine is
hashed once, not on every run; a file whose size or time changed is hashed again. A mismatch
is an :class:`~efficientbioai.errors.ArtefactError` naming the file, unless the user says
``--trust-modified`` (then a warning).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path

from efficientbioai.config import Config
from efficientbioai.errors import ArtefactError
from efficientbioai.manifest import artefact_files, sha256, write_json

log = logging.getLogger(__name__)

CACHE = ".sha256_cache.json"


def variant_files(config: Config, variants: Iterable[str]) -> list[Path]:
    """The files the engines of ``variants`` read (an OpenVINO ``.xml`` and its ``.bin``)."""
    files: list[Path] = []
    for variant in variants:
        for f in artefact_files(config.artefact(variant)):
            if f not in files:
                files.append(f)
    return files


def _digest(path: Path, cache: dict) -> str:
    st = os.stat(path)
    key = str(path)
    entry = cache.get(key)
    if entry and entry["bytes"] == st.st_size and entry["mtime_ns"] == st.st_mtime_ns:
        return entry["sha256"]
    digest = sha256(path)
    cache[key] = {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
    return digest


def check_artefacts(exp: Path, files: Iterable[Path], trust_modified: bool = False) -> dict[str, str]:
    """Compare ``files`` (inside ``exp``) with the hashes in ``exp/manifest.json``.

    Returns ``{relative name: sha256}``. Raises :class:`ArtefactError` for a missing file, a
    file the manifest does not list, or a changed file; with ``trust_modified`` the last two
    only warn.
    """
    exp = Path(exp)
    try:
        recorded = json.loads((exp / "manifest.json").read_text())["sha256"]
    except (OSError, ValueError, KeyError) as exc:
        raise ArtefactError(
            f"{exp / 'manifest.json'}: cannot read the artefact hashes ({exc}); run compress again"
        ) from None
    try:
        cache = json.loads((exp / CACHE).read_text())
    except (OSError, ValueError):
        cache = {}
    before = dict(cache)
    out = {}
    for path in files:
        path = Path(path)
        if not path.is_file():
            raise ArtefactError(f"{path}: artefact missing; run compress again (or restore the file)")
        try:
            name = str(path.resolve().relative_to(exp.resolve()))
        except ValueError:
            name = str(path)
        digest = _digest(path, cache)
        out[name] = digest
        want = recorded.get(name)
        if want == digest:
            continue
        why = "is not listed in manifest.json" if want is None else "differs from the SHA-256 compress recorded"
        message = f"{path}: {why}: the file was modified or replaced after compress"
        if not trust_modified:
            raise ArtefactError(f"{message}; run compress again, or pass --trust-modified to run it anyway")
        log.warning("%s; running it anyway (--trust-modified)", message)
    if cache != before:
        with suppress(OSError):  # a read-only experiment folder: hash again next time
            write_json(exp / CACHE, cache)
    return out
