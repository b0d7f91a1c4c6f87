"""Import cellpose lazily, with an error that says how to get it."""

from __future__ import annotations

import importlib
from importlib import metadata
from types import ModuleType

from efficientbioai.errors import BackendUnavailableError


def cellpose_module(name: str = "") -> ModuleType:
    """``cellpose`` or ``cellpose.<name>``; cellpose 4 is refused (CPnet was replaced by a SAM encoder)."""
    try:
        version = metadata.version("cellpose")
    except metadata.PackageNotFoundError:
        raise BackendUnavailableError(
            "the cellpose parser needs cellpose 3.x: pip install 'efficientbioai[cellpose]' (cellpose>=3,<4)"
        ) from None
    major = version.split(".")[0]
    if major.isdigit() and int(major) >= 4:
        raise BackendUnavailableError(
            f"cellpose {version} is installed; this parser supports cellpose 3.x (CPnet). Cellpose 4 "
            "replaced CPnet with a 305M-parameter SAM encoder: pip install 'cellpose>=3,<4'"
        )
    return importlib.import_module(f"cellpose.{name}" if name else "cellpose")
