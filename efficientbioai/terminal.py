"""One progress system: tqdm bars shown on terminals only, and log lines printed above them.

Every long loop uses :func:`bar`; the CLI's log handler (:class:`LogAboveBars`) writes each
rendered record through ``tqdm.write``, which lifts the bars, prints the line and redraws
them — so a bar and a log line never share a terminal line. Off a terminal (CI logs, pipes,
``nohup``) bars are off and only log lines are written.
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from tqdm import tqdm


def bar(iterable: Any = None, **kwargs: Any) -> tqdm:
    """``tqdm(iterable, **kwargs)``, disabled unless stderr is a terminal."""
    kwargs.setdefault("disable", None)  # tqdm: None = only on a TTY
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)


class _AboveBars:
    """A file whose writes go through ``tqdm.write`` (bars are cleared and redrawn around them)."""

    def write(self, text: str) -> int:
        tqdm.write(text, file=sys.stderr, end="")
        return len(text)

    def flush(self) -> None:
        sys.stderr.flush()


class LogAboveBars(RichHandler):
    """Rich's log formatting (time, level, message), printed above any tqdm bar."""

    def __init__(self, **kwargs: Any) -> None:
        console = Console(
            file=_AboveBars(), force_terminal=sys.stderr.isatty(), width=None if sys.stderr.isatty() else 120
        )
        super().__init__(console=console, **kwargs)
