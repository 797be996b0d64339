"""Render the statement of one of ``statreport demo``'s customers and photograph it.

    .venv/bin/python docs/render_statement.py

writes ``docs/statement-example.html`` (the statement, as the API answers it) and
``docs/statement-example.png`` (a screenshot by headless Chromium: Debian's ``chromium``).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))

from analytics.statement import Sender, customer_statement  # noqa: E402
from core.store import Store  # noqa: E402
from docs.screenshot import chromium_or_exit, run_demo, screenshot  # noqa: E402

CUSTOMER = "acme"


async def _statement(database: Path) -> str:
    store = Store(database)
    store.open()
    try:
        end = datetime.now(UTC).date() - timedelta(days=1)
        made = await customer_statement(
            store,
            customer_id=CUSTOMER,
            start=end - timedelta(days=89),
            end=end,
            sender=Sender("Initrode Software", "licensing@initrode.example"),
        )
    finally:
        await store.close()
    return made.html


def main() -> None:
    """Run the demo in a temporary folder, then render and photograph one statement."""
    chromium_or_exit()
    with tempfile.TemporaryDirectory() as work:
        data_dir = run_demo(Path(work))
        page = DOCS / "statement-example.html"
        page.write_text(asyncio.run(_statement(data_dir / "statreport.duckdb")))
        screenshot(page, DOCS / "statement-example.png", work=Path(work), height=1700)
    print(f"wrote {page} and {DOCS / 'statement-example.png'}")


if __name__ == "__main__":
    main()
