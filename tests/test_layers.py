"""The package's layers: the import contract in pyproject.toml holds, and internal imports are at module top."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_no_package_imports_a_layer_above_it():
    lint = Path(sys.executable).parent / "lint-imports"
    run = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "1 kept, 0 broken" in run.stdout


def test_internal_imports_are_at_module_top():
    """Only optional heavy backends (third-party) load inside functions; our own modules never do."""
    found = []
    for path in sorted((ROOT / "efficientbioai").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                for node in ast.walk(fn):
                    module = getattr(node, "module", None) or ""
                    names = [a.name for a in getattr(node, "names", [])] if isinstance(node, ast.Import) else []
                    if module.startswith("efficientbioai") or any(n.startswith("efficientbioai") for n in names):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    # the two scripts import the CLI only when run as scripts, and stand for the API when imported
    allowed = {"efficientbioai/compress.py", "efficientbioai/inference.py"}
    assert [f for f in found if f.split(":")[0] not in allowed] == []


def test_engines_are_used_through_their_capabilities():
    """Outside ``engines/``, no code tests an engine's class or reaches into its members."""
    import re

    private = re.compile(r"engine\.(model|compiled|request|gpu|_\w+)\b|isinstance\(\w*engine|hasattr\(\w*engine")
    found = [
        f"{path.relative_to(ROOT)}:{i}"
        for path in sorted((ROOT / "efficientbioai").rglob("*.py"))
        if "engines" not in path.parts
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if private.search(line)
    ]
    assert found == []
