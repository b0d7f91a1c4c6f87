"""bioimage.io packages, offline: the library loaded with every network lookup switched off.

``bioimageio.spec`` resolves zoo ids and checks URLs online unless told not to; its settings
are read when it is first imported, so :func:`bioimageio_spec` sets them first. Packages this
project writes and reads hold only local files, so validation and ``test_model`` read and hash
those files and fetch nothing.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from efficientbioai.errors import BackendUnavailableError, InputError

_OFFLINE = {
    "BIOIMAGEIO_PERFORM_IO_CHECKS": "false",
    "BIOIMAGEIO_COLLECTION_HTTP_PATTERN": "",
    "BIOIMAGEIO_ID_MAP": "offline",  # no '/': an id lookup fails at once instead of downloading
    "BIOIMAGEIO_ID_MAP_DRAFT": "offline",
    "BIOIMAGEIO_RESOLVE_DRAFT": "false",
    "BIOIMAGEIO_HTTP_TIMEOUT": "1",
    "CI": "true",  # no download bars
}


def bioimageio_spec() -> Any:
    """``bioimageio.spec``, imported with network access off (or a clear error if not installed)."""
    for key, value in _OFFLINE.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("BIOIMAGEIO_CACHE_PATH", str(Path(tempfile.gettempdir()) / "efficientbioai_bioimageio"))
    try:
        import bioimageio.spec as spec
    except ImportError as exc:
        raise BackendUnavailableError(
            f"bioimage.io packages need bioimageio.core ({exc}); pip install 'efficientbioai[bioimageio]'"
        ) from None
    return spec


def load_package(path: str | Path) -> Any:
    """The model description of a package (``.zip``) or its ``rdf.yaml``, validated offline."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"bioimage.io package not found: {path}")
    spec = bioimageio_spec()
    descr = spec.load_model_description(path, perform_io_checks=False)
    if isinstance(descr, spec.InvalidDescr):
        raise InputError(f"{path}: not a valid bioimage.io model: {descr.validation_summary.format()[:1500]}")
    if type(descr).__module__.split(".")[-1] != "v0_5":
        raise InputError(f"{path}: format {descr.format_version}; this reads bioimage.io model spec 0.5 packages")
    return descr
