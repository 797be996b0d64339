"""The customer's own view (SPEC §15) in a real browser: a link opens it with no account, the
token leaves the address bar, every page stays within that customer, and revoking or expiry
ends it at once, naming the account manager."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
import time_machine
from playwright.sync_api import BrowserContext, Page

from tests import clock
from tests.console.conftest import Console, sign_in, staff_token
from tests.support import (
    WORKED_EXAMPLE_ORDER,
    assert_problem,
    customer,
    days,
    evaluate,
    send_daily,
    start_thread_server,
)

pytestmark = pytest.mark.moment(clock.WRITTEN_ON)

#: A customer whose name would run as a script if any page forgot to escape it.
HOSTILE = "<script>window.__pwned = 1</script>\"'><img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    server = start_thread_server(tmp_path_factory.mktemp("portal"))
    key = server.add_customer("acme", customer("alice@vendor.example", WORKED_EXAMPLE_ORDER))
    usage = dict.fromkeys(days("2026-10-01", "2026-11-08"), 48)
    usage.update(dict.fromkeys(days("2026-11-03", "2026-11-08"), 58))
    send_daily(server, key, usage, instance="6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9")
    other = server.add_customer("globex", customer("bob@vendor.example", WORKED_EXAMPLE_ORDER))
    send_daily(
        server,
        other,
        dict.fromkeys(days("2026-10-01", "2026-11-08"), 70),
        instance="7a1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9",
    )
    hostile = server.add_customer(
        "evil", {**customer("eve@vendor.example", WORKED_EXAMPLE_ORDER), "name": HOSTILE}
    )
    send_daily(
        server,
        hostile,
        dict.fromkeys(days("2026-10-01", "2026-11-08"), 90),
        instance="8b1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9",
    )
    evaluate(server, "2026-11-08")
    viewer, admin = staff_token(server, "vera", "viewer"), staff_token(server, "adam", "admin")
    yield Console(server, viewer, admin)
    server.stop()


def make_link(console: Console, customer_id: str, **body: object) -> dict[str, str]:
    with console.server.admin() as http:
        answer = http.post(f"/v1/customers/{customer_id}/links", json={"note": "for Jane", **body})
    assert answer.status_code == 201, answer.text
    made: dict[str, str] = answer.json()
    return made


def open_view(context: BrowserContext, link: dict[str, str]) -> Page:
    page = context.new_page()
    answer = page.goto(link["url"])
    assert answer is not None
    return page


def crawl(page: Page, console: Console) -> dict[str, str]:
    """Every address the view's pages link to, followed from its overview: each one's text."""
    base = console.url + "/c/"
    seen: dict[str, str] = {}
    queue = [base]
    while queue:
        address = queue.pop(0)
        if address in seen:
            continue
        answer = page.goto(address)
        assert answer is not None
        assert answer.status == 200, address
        is_page = "text/html" in answer.headers.get("content-type", "")
        seen[address] = page.content() if is_page else ""
        if not is_page or "format=csv" in address:
            continue
        for href in page.locator("a[href]").evaluate_all(
            "els => els.map(e => e.getAttribute('href'))"
        ):
            target = urljoin(address, href).split("#")[0]
            assert target.startswith(base), f"{address} links out of the view: {href}"
            if target not in seen and "format=csv" not in target:
                queue.append(target)
    return seen


def test_a_link_opens_the_customers_own_view_and_nothing_else(
    context: BrowserContext, console: Console
) -> None:
    link = make_link(console, "acme")
    token = urlsplit(link["url"]).path.rsplit("/", 1)[1]
    assert len(token) >= 43  # 256 random bits
    with console.server.admin() as http:
        listed = http.get("/v1/customers/acme/links")
        assert token not in listed.text
        audit = http.get("/v1/audit-log", params={"target": "customer:acme"}).json()
        assert audit[0]["action"] == "customer_link.create"
        assert token not in str(audit[0])
    page = open_view(context, link)
    assert page.url == console.url + "/c/"  # the token left the address bar
    cookie = next(c for c in context.cookies() if c["name"] == "statreport_view")
    assert (cookie["path"], cookie["httpOnly"], cookie["secure"], cookie["sameSite"]) == (
        "/c/",
        True,
        True,
        "Lax",
    )
    answer = page.goto(console.url + "/c/")
    assert answer is not None
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["cache-control"] == "no-store"
    assert "default-src 'self'" in answer.headers["content-security-policy"]
    main = page.locator("main").inner_text()
    assert "In regularization window" in main
    assert "6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9" in main
    assert page.get_by_role("button", name="Retire").count() == 0

    page.locator(".findings-list a").first.click()
    assert "/c/findings/f_" in page.url
    assert "58" in page.locator("table.evidence").inner_text()
    page.goto(console.url + "/c/")
    with page.expect_download() as download:
        page.get_by_role("link", name="Its daily rows (CSV)").click()
    assert download.value.suggested_filename.startswith("statement-acme-")

    pages = crawl(page, console)
    assert len(pages) >= 3  # the overview, the evidence and the statement at least
    for address, text in pages.items():
        for foreign in ("globex", "bob@vendor.example", "/ui/", "audit", "license_key", "srk_"):
            assert foreign not in text, f"{address} shows {foreign}"

    with console.server.admin() as http:  # another customer's finding, by its address
        run = http.get("/v1/evaluations").json()[0]["evaluation_id"]
        theirs = next(
            f["finding_id"]
            for f in http.get(f"/v1/evaluations/{run}").json()["findings"]
            if f["customer_id"] == "globex"
        )
    answer = page.goto(f"{console.url}/c/findings/{theirs}")
    assert answer is not None
    assert answer.status == 404
    with console.server.admin() as http:
        (counted,) = [
            x
            for x in http.get("/v1/customers/acme/links").json()
            if x["link_id"] == link["link_id"]
        ]
    assert counted["views"] >= len(pages)
    assert counted["last_viewed_at"] is not None


def test_revoking_a_link_ends_its_open_view_at_once(
    context: BrowserContext, console: Console
) -> None:
    link = make_link(console, "acme")
    page = open_view(context, link)
    assert page.url == console.url + "/c/"
    with console.server.admin() as http:
        assert http.delete(f"/v1/customers/acme/links/{link['link_id']}").status_code == 204
    answer = page.goto(console.url + "/c/")
    assert answer is not None
    assert answer.status == 410
    assert "alice@vendor.example" in page.locator("main").inner_text()
    again = page.goto(link["url"])
    assert again is not None
    assert again.status == 410
    assert "was revoked" in page.locator("main").inner_text()
    assert "alice@vendor.example" in page.locator("main").inner_text()
    unknown = page.goto(console.url + "/c/" + "A" * 43)
    assert unknown is not None
    assert unknown.status == 404


def test_an_expired_link_answers_410_naming_whom_to_ask(
    context: BrowserContext, console: Console, moment: time_machine.Traveller
) -> None:
    link = make_link(console, "acme", expires_in_days=1)
    moment.move_to(clock.WRITTEN_ON + timedelta(days=2))
    page = context.new_page()
    answer = page.goto(link["url"])
    assert answer is not None
    assert answer.status == 410
    assert "expired" in page.locator("main").inner_text()
    assert "alice@vendor.example" in page.locator("main").inner_text()


def test_only_an_admin_makes_links(console: Console) -> None:
    with httpx.Client(
        base_url=console.url,
        verify=console.server.verify(),
        headers={"Authorization": f"Bearer {console.viewer}"},
    ) as http:
        assert http.get("/v1/customers/acme/links").status_code == 200
        assert_problem(http.post("/v1/customers/acme/links", json={}), 403, "viewer")
    with console.server.admin() as http:
        assert_problem(
            http.post("/v1/customers/acme/links", json={"expires_in_days": 91}), 422, "90"
        )
        assert_problem(http.post("/v1/customers/nobody/links", json={}), 404, "nobody")


def test_a_hostile_name_is_text_on_every_page(context: BrowserContext, console: Console) -> None:
    page = open_view(context, make_link(console, "evil", note=HOSTILE))
    pages = crawl(page, console)
    for address, text in pages.items():
        if text:
            assert "<script>window.__pwned" not in text, address
    assert page.evaluate("window.__pwned") is None
    page.goto(console.url + "/c/")
    assert HOSTILE in page.locator("h1").inner_text()  # shown as written, as text
    statement = page.goto(console.url + "/c/statement")
    assert statement is not None
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in statement.text()
    assert "<script>window.__pwned" not in statement.text()


def test_an_admin_makes_and_revokes_a_link_from_the_customers_page(
    context: BrowserContext, console: Console
) -> None:
    page = sign_in(context, console, console.admin)
    page.goto(console.url + "/ui/customers/acme")
    section = page.locator("#view")
    section.get_by_label("For whom").fill("Jane Doe, IT")
    section.get_by_role("button", name="Make a link").click()
    url = page.locator("#view .shown-once code.secret").inner_text()
    assert url.startswith(console.url + "/c/")
    page.reload()
    assert page.locator("#view .shown-once").count() == 0  # shown once

    view = context.new_page()
    view.goto(url)
    assert view.url == console.url + "/c/"
    row = page.locator("#view tbody tr", has_text="Jane Doe, IT")
    row.get_by_role("button", name="Revoke").click()
    page.get_by_role("button", name=re.compile("^Revoke lnk_")).click()  # the second step
    assert "revoked" in page.locator("#view tbody tr", has_text="Jane Doe, IT").inner_text()
    ended = view.goto(console.url + "/c/")
    assert ended is not None
    assert ended.status == 410
