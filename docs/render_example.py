"""Render one real weekly email with ``statreport demo`` and photograph it.

    .venv/bin/python docs/render_example.py

writes ``docs/weekly-email-example.html`` (the email's HTML part, its inline charts turned
into data: URIs so that a browser shows them) and ``docs/weekly-email-example.png`` (a
screenshot by headless Chromium: Debian's ``chromium`` package).
"""

from __future__ import annotations

import base64
import sys
import tempfile
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))

from docs.screenshot import chromium_or_exit, run_demo, screenshot  # noqa: E402

RECIPIENT = "alice@vendor.example"


def main() -> None:
    """Run the demo in a temporary folder, then render and photograph one email."""
    chromium_or_exit()
    with tempfile.TemporaryDirectory() as work:
        data_dir = run_demo(Path(work))
        (eml,) = sorted((data_dir / "outbox").glob(f"*{RECIPIENT}.eml"))
        message = message_from_bytes(eml.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        html_part = message.get_body(preferencelist=("html",))
        assert html_part is not None
        html = str(html_part.get_content())
        for part in message.walk():
            if part.get_content_type() == "image/png":
                cid = str(part["Content-ID"]).strip("<>")
                data = base64.b64encode(part.get_payload(decode=True)).decode()  # type: ignore[arg-type]
                html = html.replace(f"cid:{cid}", f"data:image/png;base64,{data}")
        page = DOCS / "weekly-email-example.html"
        page.write_text(html)
        screenshot(page, DOCS / "weekly-email-example.png", work=Path(work), height=1300)
    print(f"wrote {page} and {DOCS / 'weekly-email-example.png'}")


if __name__ == "__main__":
    main()
