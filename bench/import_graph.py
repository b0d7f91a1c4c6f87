"""The package's import graph: cycles between top-level modules, and imports inside functions.

    .venv/bin/python bench/import_graph.py [checkout ...]    # default: this checkout

Reads the source (an AST walk; nothing is imported), so it also measures an old checkout, e.g.
``git worktree add /tmp/old <rev>``. Top-level modules are the first name under
``efficientbioai`` (``engines``, ``config``, ...); a cycle is a group of them that all reach
each other through module-level or in-function imports.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def graph(checkout: Path) -> tuple[dict[str, set[str]], int, int]:
    """Edges between top-level modules, and our / third-party imports inside functions."""
    edges: dict[str, set[str]] = {}
    internal = external = 0
    for path in (checkout / "efficientbioai").rglob("*.py"):
        source = path.relative_to(checkout).parts[1].removesuffix(".py")
        tree = ast.parse(path.read_text())
        functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        inside = {id(m) for f in functions for m in ast.walk(f) if isinstance(m, (ast.Import, ast.ImportFrom))}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                ours = name.startswith("efficientbioai.")
                if id(node) in inside:
                    internal, external = internal + ours, external + (not ours)
                if ours and name.split(".")[1] != source:
                    edges.setdefault(source, set()).add(name.split(".")[1])
    return edges, internal, external


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that all reach each other (strongly connected, more than one)."""

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reachable = {n: reach(n) for n in set(edges) | {m for ms in edges.values() for m in ms}}
    groups = {frozenset(m for m in reachable[n] if n in reachable[m]) | {n} for n in reachable if n in reachable[n]}
    return sorted(sorted(g) for g in groups if len(g) > 1)


if __name__ == "__main__":
    for checkout in [Path(p) for p in sys.argv[1:]] or [Path(__file__).resolve().parent.parent]:
        edges, internal, external = graph(checkout)
        print(
            f"{checkout}: cycles {cycles(edges) or 'none'}; imports inside functions: "
            f"{internal} of our modules, {external} third-party"
        )
