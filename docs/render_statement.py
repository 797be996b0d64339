"""Render the statement of one of ``statreport demo``'s customers and photograph it.

    .venv/bin/python docs/render_statement.py

writes ``docs/statement-example.html`` (the statement, as the API answers it) and
``docs/statement-example.png`` (a screenshot by headless Chromium: Debian's ``chromium``).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))

from analytics.statement import customer_statement  # noqa: E402
from core.store import Store  # noqa: E402

CUSTOMER = "acme"


async def _statement(database: Path) -> str:
    store = Store(database)
    store.open()
    try:
        end = datetime.now(UTC).date() - timedelta(days=1)
        made = await customer_statement(
            store, customer_id=CUSTOMER, start=end - timedelta(days=89), end=end
        )
    finally:
        await store.close()
    return made.html


def main() -> None:
    """Run the demo in a temporary folder, then render and photograph one statement."""
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("chromium is not installed: apt-get install chromium")
    with tempfile.TemporaryDirectory() as work:
        data_dir = Path(work) / "statreport-demo"
        subprocess.run(
            [sys.executable, "-m", "statreport", "demo", "--data-dir", str(data_dir)], check=True
        )
        page = DOCS / "statement-example.html"
        page.write_text(asyncio.run(_statement(data_dir / "statreport.duckdb")))
        subprocess.run(
            [
                chromium,
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
                "--window-size=800,1700",
                f"--screenshot={DOCS / 'statement-example.png'}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
        )
    print(f"wrote {page} and {DOCS / 'statement-example.png'}")


if __name__ == "__main__":
    main()
