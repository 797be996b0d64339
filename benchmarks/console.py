"""Console pages over 10M reports: each page's time as the server answers it and as the browser
shows it, against the sign-in page (no data) measured in the same run.

One command: ``.venv/bin/python benchmarks/console.py`` (``--customers`` and ``--days`` scale
the data as in ``benchmarks/evaluate.py``, whose generator it uses: by default 2,000 customers x
5 instances x hourly x 42 days = 10,080,000 reports). It evaluates once, starts the real server
over TLS on the data, signs in, then for each page takes the median of ``--rounds`` requests
over HTTPS (server side, as a client on the same machine sees it) and of ``--rounds`` browser
loads in headless Chromium (Debian's ``chromium``; the navigation's load time, which adds
parsing and drawing). Timing never fails anything.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import httpx  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from analytics.service import evaluate  # noqa: E402
from benchmarks.evaluate import generate  # noqa: E402
from core.store import Store  # noqa: E402
from docs.screenshot import chromium_or_exit, serve_data  # noqa: E402


def _evaluate(data_dir: Path) -> tuple[str, str, str]:
    """Evaluate as of yesterday; answer the as_of, an over-used customer and its finding."""
    as_of = datetime.now(UTC).date() - timedelta(days=1)
    store = Store(data_dir / "statreport.duckdb", duckdb_threads=2)
    store.open()
    try:
        run = asyncio.run(evaluate(store, as_of=as_of))
    finally:
        store.close_file()
    finding = next(f for f in run.findings if f.kind == "overuse")
    return as_of.isoformat(), finding.customer_id, finding.finding_id


def _reports(database: Path) -> int:
    con = duckdb.connect(str(database), read_only=True)
    row = con.execute("SELECT count(*) FROM reports").fetchone()
    con.close()
    return int(row[0]) if row else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--instances", type=int, default=5)
    parser.add_argument("--days", type=int, default=42)
    parser.add_argument("--rounds", type=int, default=5, help="measurements of each page")
    parser.add_argument(
        "--keep",
        type=Path,
        help="generate the data into this folder once and keep it; later runs reuse it",
    )
    args = parser.parse_args()
    chromium = chromium_or_exit()

    work = args.keep or Path(tempfile.mkdtemp(prefix="statreport-console-bench-"))
    database = work / "statreport.duckdb"
    if not database.exists():
        print("generating the benchmark database ...", file=sys.stderr, flush=True)
        work.mkdir(parents=True, exist_ok=True)
        generate(database, customers=args.customers, instances=args.instances, days=args.days)
    count = _reports(database)
    as_of, customer_id, finding_id = _evaluate(work)
    root = secrets.token_urlsafe(24)
    server, thread, url = serve_data(work, root)
    pages = {
        "sign-in (baseline)": "/ui/login",
        "findings": "/ui/",
        "customers": "/ui/customers",
        "a customer (90 days)": f"/ui/customers/{customer_id}",
        "evidence": f"/ui/findings/{finding_id}?as_of={as_of}",
        "weekly reports": "/ui/weekly",
        "audit log": "/ui/audit",
        "tokens": "/ui/tokens",
        # The customer's own view (SPEC §15), opened from a link as its administrator would.
        "view: overview": "/c/",
        "view: evidence": f"/c/findings/{finding_id}",
        "view: statement": "/c/statement",
    }
    served: dict[str, float] = {}
    shown: dict[str, float] = {}
    try:
        with httpx.Client(base_url=url, verify=False, timeout=60) as http:  # noqa: S501 (own)
            token = (
                http.post(
                    "/v1/tokens",
                    json={"name": f"bench-{secrets.token_hex(4)}", "role": "admin"},
                    headers={"Authorization": f"Bearer {root}"},
                )
                .raise_for_status()
                .json()["token"]
            )
            http.post("/ui/login", data={"token": token})
            link = http.post(
                f"/v1/customers/{customer_id}/links",
                json={"note": "benchmark"},
                headers={"Authorization": f"Bearer {token}"},
            )
            view_link = link.raise_for_status().json()["url"]
            http.get(view_link)  # the view's cookie, beside the console's
            for name, path in pages.items():
                print(f"measuring {name} ...", file=sys.stderr, flush=True)
                times = []
                for _ in range(args.rounds + 1):  # the first warms the caches
                    started = time.perf_counter()
                    response = http.get(path)
                    times.append(time.perf_counter() - started)
                    if response.status_code != 200:
                        sys.exit(f"{path} answered {response.status_code}: {response.text[:200]}")
                served[name] = statistics.median(times[1:])
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_context(ignore_https_errors=True).new_page()
            page.goto(url + "/ui/login")
            page.get_by_label("Token").fill(token)
            page.get_by_role("button", name="Sign in").click()
            page.goto(view_link)
            for name, path in pages.items():
                times = []
                for _ in range(args.rounds):
                    page.goto(url + path)
                    times.append(
                        page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
                        / 1000
                    )
                shown[name] = statistics.median(times)
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"console benchmark: {count:,} reports, evaluation as of {as_of}")
    print(f"{'page':<24}{'served ms':>11}{'in browser ms':>15}{'served / sign-in':>18}")
    base = served["sign-in (baseline)"]
    for name in pages:
        print(
            f"{name:<24}{served[name] * 1000:>11.0f}{shown[name] * 1000:>15.0f}"
            f"{served[name] / base:>17.1f}x"
        )


if __name__ == "__main__":
    main()
