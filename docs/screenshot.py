"""Photograph a page with headless Chromium (Debian's ``chromium``), offline."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def chromium_or_exit() -> str:
    """The path of ``chromium``, or exit saying how to install it."""
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("chromium is not installed: apt-get install chromium")
    return chromium


def screenshot(page: Path, png: Path, *, work: Path, height: int) -> None:
    """Write ``png``: ``page`` 800 pixels wide, with nothing fetched from the network."""
    subprocess.run(
        [
            chromium_or_exit(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={work}/chromium",
            "--hide-scrollbars",
            f"--window-size=800,{height}",
            f"--screenshot={png}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
    )


def run_demo(work: Path) -> Path:
    """Run ``statreport demo`` into a folder of ``work``; answer its data directory."""
    data_dir = work / "statreport-demo"
    subprocess.run(
        [sys.executable, "-m", "statreport", "demo", "--data-dir", str(data_dir)], check=True
    )
    return data_dir
