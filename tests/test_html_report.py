"""``report.html``: self-contained (no network), its figures also PNGs, and a browser renders every figure."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest


def test_the_page_embeds_every_figure_and_needs_no_network(tiny_report, tiny_experiment):
    page = (tiny_experiment / "report.html").read_text()
    figures = int(re.search(r"data-figures='(\d+)'", page).group(1))
    assert figures >= 2  # speed vs accuracy, outputs side by side
    assert page.count('src="data:image/png;base64,') == figures
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", page)  # nothing fetched from anywhere
    for png in ("report_speed_accuracy.png", "report_outputs.png"):
        assert (tiny_experiment / png).stat().st_size > 5_000
    for variant in ("torch:fp32", "openvino:int8"):
        assert f"<td>{variant}" in page
    assert "deployed" in page and "ISA:" in page  # the deployed row and the machine section


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_a_headless_browser_renders_every_figure(tiny_report, tiny_experiment, tmp_path):
    page = tiny_experiment / "report.html"
    dom = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    figures = int(re.search(r"data-figures=\"(\d+)\"", dom).group(1))
    assert re.search(r'data-rendered="(\d+)"', dom).group(1) == str(figures)
