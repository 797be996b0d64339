"""Photograph the console's main pages over the demo's data.

    .venv/bin/python docs/console_screenshots.py

runs ``statreport demo`` in a temporary folder, serves its data directory, signs in to the
console with an admin token in headless Chromium (Debian's ``chromium``, driven by Playwright)
and writes ``docs/console-*.png``; then opens a link to a customer's own view in a fresh
browser, as its administrator would, and writes ``docs/customer-view*.png``.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))

from docs.screenshot import chromium_or_exit, run_demo, serve_data  # noqa: E402

#: (file, path or None for "follow the first evidence link", height to keep)
PAGES = (
    ("console-findings.png", "/ui/", 1500),
    ("console-customer.png", "/ui/customers/acme", 1500),
    ("console-evidence.png", None, 1100),
    ("console-weekly.png", "/ui/weekly", 700),
    ("console-audit.png", "/ui/audit", 900),
    ("console-order-form.png", "/ui/customers/acme/new-order", 1000),
    ("console-webhooks.png", "/ui/webhooks", 700),
)
#: The customer's own view (SPEC §15), as the customer's administrator sees it.
VIEW_PAGES = (("customer-view.png", 1600), ("customer-view-evidence.png", 1100))


def _shoot(page: Page, file: str, height: int) -> None:
    full = page.evaluate("document.documentElement.scrollHeight")
    page.screenshot(
        path=DOCS / file, clip={"x": 0, "y": 0, "width": 1280, "height": min(full, height)}
    )
    print(f"wrote {DOCS / file}")


def main() -> None:
    """Run the demo, then photograph each page as an admin sees it."""
    chromium = chromium_or_exit()
    with tempfile.TemporaryDirectory() as work:
        data_dir = run_demo(Path(work))
        root = secrets.token_urlsafe(24)
        server, thread, url = serve_data(data_dir, root)
        try:
            with httpx.Client(base_url=url, verify=False) as http:  # noqa: S501 (own server)
                made = http.post(
                    "/v1/tokens",
                    json={"name": "lena", "role": "admin"},
                    headers={"Authorization": f"Bearer {root}"},
                )
                token = made.raise_for_status().json()["token"]
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=chromium, args=["--no-sandbox"]
                )
                context = browser.new_context(
                    ignore_https_errors=True, viewport={"width": 1280, "height": 900}
                )
                page = context.new_page()
                page.goto(url + "/ui/login")
                page.get_by_label("Token").fill(token)
                page.get_by_role("button", name="Sign in").click()
                for file, path, height in PAGES:
                    if path is None:
                        page.goto(url + "/ui/")
                        page.locator("section.findings a", has_text="Evidence").first.click()
                    else:
                        page.goto(url + path)
                    _shoot(page, file, height)
                # A destructive action's second step.
                page.goto(url + "/ui/customers/acme")
                page.locator("form", has_text="Revoke").get_by_role("button").first.click()
                _shoot(page, "console-confirm.png", 420)
                with httpx.Client(base_url=url, verify=False) as http:  # noqa: S501 (own server)
                    link = http.post(
                        "/v1/customers/acme/links",
                        json={"note": "for the screenshots"},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    address = link.raise_for_status().json()["url"]
                customer = browser.new_context(
                    ignore_https_errors=True, viewport={"width": 1280, "height": 900}
                ).new_page()
                customer.goto(address)
                _shoot(customer, VIEW_PAGES[0][0], VIEW_PAGES[0][1])
                customer.locator(".findings-list a").first.click()
                _shoot(customer, VIEW_PAGES[1][0], VIEW_PAGES[1][1])
                browser.close()
        finally:
            server.should_exit = True
            thread.join(timeout=30)


if __name__ == "__main__":
    main()
