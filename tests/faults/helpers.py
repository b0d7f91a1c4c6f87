"""Fault-injection helpers: a private copy of the session's tiny experiment to break."""

from __future__ import annotations

import shutil
from pathlib import Path


def experiment_copy(tiny_experiment: Path, folder: Path) -> Path:
    """A copy of the compressed tiny experiment, without outputs an earlier test's inference left
    (deploy.yaml paths are relative: it runs there)."""
    exp = folder / "exp"
    shutil.copytree(tiny_experiment, exp, ignore=shutil.ignore_patterns("report.*", "predictions", ".*cache*"))
    return exp
