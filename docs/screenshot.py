"""Photograph a page with headless Chromium (Debian's ``chromium``), offline."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import uvicorn

from core.settings import Settings
from statreport.server import free_port, start_in_thread


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


def serve_data(data_dir: Path, token: str) -> tuple[uvicorn.Server, threading.Thread, str]:
    """Serve a data directory over HTTPS on a free port, quietly, with ``token`` as the root
    token; answers the server, its thread and its URL."""
    settings = Settings(
        data_dir=data_dir,
        port=free_port(),
        admin_token=token,
        scheduler_enabled=False,
        log_level="warning",
    )
    server, thread = start_in_thread(settings)
    return server, thread, f"https://127.0.0.1:{settings.port}"
