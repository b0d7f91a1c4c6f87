"""Progress bars and log lines share the terminal without overwriting each other; off a terminal bars are off."""

from __future__ import annotations

import io
import logging

from tqdm import tqdm

from efficientbioai.terminal import LogAboveBars, bar


def test_bars_are_off_when_stderr_is_not_a_terminal():
    assert bar(range(3)).disable  # pytest captures stderr: not a TTY, as in CI logs and pipes


def test_log_lines_go_above_the_bars(monkeypatch):
    written: list[str] = []
    monkeypatch.setattr(tqdm, "write", classmethod(lambda cls, s, file=None, end="\n", nolock=False: written.append(s)))
    log = logging.getLogger("efficientbioai.test_terminal")
    handler = LogAboveBars(show_path=False, markup=False)
    log.addHandler(handler)
    log.propagate = False
    try:
        out = io.StringIO()
        with tqdm(range(3), file=out) as progress:  # a bar drawn on "the terminal"
            for _ in progress:
                log.warning("chunk %d written", 7)
    finally:
        log.removeHandler(handler)
    assert len(written) == 3 and all("chunk 7 written" in w and "WARNING" in w for w in written)
    assert "chunk 7" not in out.getvalue()  # never on the bar's line
