"""The staff console in a real browser (SPEC §12): headless Chromium from Debian's ``chromium``
package, driven by Playwright, against the real server over TLS."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import time_machine
from playwright.sync_api import Browser, BrowserContext

from console.overview import DEFAULT_PERIOD_DAYS
from core.days import latest_finished_day
from tests import clock
from tests.conftest import ServerFactory
from tests.console.conftest import Console, csrf_of, sign_in, staff_token
from tests.support import (
    ADMIN_TOKEN,
    WORKED_EXAMPLE_ORDER,
    customer,
    days,
    evaluate,
    send_daily,
    start_thread_server,
)

#: Its dates are literal (the worked example's November): it runs on the day they were written for.
pytestmark = pytest.mark.moment(clock.WRITTEN_ON)

PRODUCTION = "6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    server = start_thread_server(tmp_path_factory.mktemp("console"))
    # SPEC §5-§6's worked example: 58 users against 50 from 2026-11-03.
    key = server.add_customer("acme", customer("alice@vendor.example", WORKED_EXAMPLE_ORDER))
    usage = dict.fromkeys(days("2026-10-01", "2026-11-08"), 48)
    usage.update(dict.fromkeys(days("2026-11-03", "2026-11-08"), 58))
    send_daily(server, key, usage, instance=PRODUCTION)
    server.add_customer("globex", customer("bob@vendor.example", WORKED_EXAMPLE_ORDER))
    evaluate(server, "2026-11-08")
    viewer, admin = staff_token(server, "vera", "viewer"), staff_token(server, "adam", "admin")
    made = Console(server, viewer, admin)
    yield made
    server.stop()


def test_a_viewer_sees_every_page_and_no_button_that_changes_anything(
    context: BrowserContext, console: Console
) -> None:
    page = sign_in(context, console, console.viewer)
    assert page.get_by_role("heading", name="Findings").is_visible()
    section = page.locator("section.findings", has_text="In regularization window")
    row = section.locator("tbody tr", has_text="acme")
    assert "58 / 50" in row.inner_text()
    assert page.get_by_role("button", name="Run evaluation").count() == 0

    row.get_by_role("link", name="Evidence").click()
    assert "/ui/findings/f_" in page.url
    assert page.get_by_role("heading", name="Evidence: overuse of users").is_visible()
    peak = page.locator("table.evidence tbody tr", has_text="2026-11-03").first
    assert "58" in peak.inner_text()
    assert page.locator("figure.chart svg circle").count() >= 6  # the over-days are marked
    assert "Report ids (up to 3)" in page.locator("table.evidence thead").inner_text()
    page.emulate_media(media="print")  # handed to a customer: the console around it is gone
    assert not page.locator("header.top").is_visible()
    assert page.locator("table.evidence").is_visible()
    page.emulate_media(media="screen")
    shown = page.locator("main").inner_text()
    page.goto(page.url.split("?")[0])  # a bare address: the newest run's, as the findings page
    assert page.locator("main").inner_text() == shown

    page.get_by_role("navigation", name="Console").get_by_role("link", name="Customers").click()
    listed = page.locator("tbody tr", has_text="acme")
    assert "In regularization window: users" in listed.inner_text()
    listed.get_by_role("link", name="Alice").click()
    assert page.url.endswith("/ui/customers/acme")
    chart = page.locator("figure#chart-users")
    assert "over-days" in chart.inner_text()
    assert chart.locator("svg rect.window").count() == 1  # the episode's 30 days, shaded
    assert PRODUCTION in page.locator("#instances").inner_text()
    for name in ("Replace the document", "Issue a licence key", "Retire"):
        assert page.get_by_role("button", name=name).count() == 0
    statement = page.get_by_role("link", name="Statement for this period")
    assert "/ui/customers/acme/statement?from=" in (statement.get_attribute("href") or "")

    for label, heading in (("Weekly reports", "Weekly reports"), ("Audit log", "Audit log")):
        page.get_by_role("navigation", name="Console").get_by_role("link", name=label).click()
        assert page.get_by_role("heading", name=heading, exact=True).is_visible()
    assert page.get_by_role("link", name="Tokens").count() == 0
    assert page.goto(console.url + "/ui/tokens").status == 403  # type: ignore[union-attr]


def test_a_viewer_posting_anyway_is_refused_and_nothing_changes(
    context: BrowserContext, console: Console
) -> None:
    page = sign_in(context, console, console.viewer)
    answer = context.request.post(
        console.url + "/ui/customers/acme/license-keys", form={"csrf": csrf_of(page)}
    )
    assert answer.status == 403
    assert "'vera' has the role 'viewer'" in html.unescape(answer.text())
    with console.server.admin() as http:
        keys = http.get("/v1/customers/acme").json()["license_keys"]
    assert len(keys) == 1


def test_an_admin_issues_a_key_replaces_the_document_and_sees_it_audited(
    context: BrowserContext, console: Console
) -> None:
    page = sign_in(context, console, console.admin)
    page.goto(console.url + "/ui/customers/globex")
    page.get_by_role("button", name="Issue a licence key").click()
    shown = page.locator(".shown-once code.secret").inner_text()
    assert re.fullmatch(r"srk_[A-Za-z0-9_-]{43}", shown)
    page.reload()  # shown once: not on the page again
    assert page.locator(".shown-once").count() == 0

    page.locator("#document summary").click()  # the advanced view
    document = page.get_by_label(re.compile("The whole document"))
    original = document.input_value()
    for broken, needle in (
        ('{"name": "Globex", "orders": [}', "not JSON"),
        ('{"name": "Globex"}', "account_manager: Field required"),
    ):
        document.fill(broken)
        page.get_by_role("button", name="Replace the document").click()
        errors = page.locator("#document-errors")
        assert "Nothing was saved" in errors.inner_text()
        assert needle in errors.inner_text()
        assert document.input_value() == broken  # kept beside its errors, for fixing
    with console.server.admin() as http:
        assert http.get("/v1/customers/globex").json()["name"] == "Bob"

    document.fill(original.replace('"name": "Bob"', '"name": "Globex Corporation"'))
    page.get_by_role("button", name="Replace the document").click()
    assert page.get_by_role("heading", name=re.compile("^Globex Corporation")).is_visible()
    assert "Saved: the whole document replaced" in page.locator("#saved[role=status]").inner_text()
    # The newest run knew the document before this change: its findings may be stale.
    stale = page.locator("#stale")
    assert "may be out of date" in stale.inner_text()
    assert stale.get_by_role("button", name=re.compile("^Evaluate now")).is_visible()

    page.get_by_role("link", name="its changes in the audit log").click()  # this customer's
    page.wait_for_url(re.compile(r"/ui/audit\?target=customer(:|%3A)globex"))
    newest = page.locator("article.audit").first
    assert "customer.update" in newest.inner_text()
    assert "By adam" in newest.inner_text()
    # The change field by field: only the name changed, and it says from what to what.
    rows = newest.locator("table.diff tbody tr").all_inner_texts()
    assert [row.split("\t") for row in rows if row.startswith("name")] == [
        ["name", "changed", "Bob", "Globex Corporation"]
    ]
    assert not any(row.startswith("orders") for row in rows)
    newest.locator("summary").click()  # the whole documents, one click away
    before, after = newest.locator("pre.json").all_inner_texts()
    assert '"name": "Bob"' in before
    assert '"name": "Globex Corporation"' in after


def test_an_admin_retires_an_instance_and_runs_an_evaluation_from_the_keyboard(
    context: BrowserContext, console: Console
) -> None:
    page = sign_in(context, console, console.admin)
    page.goto(console.url + "/ui/customers/acme")
    assert page.locator("#stale").count() == 0  # unchanged since the newest run
    row = page.locator(f"#instance-{PRODUCTION}")
    row.get_by_label("Retired on").fill("2026-11-08")
    row.get_by_role("button", name="Retire").click()
    # A second step names what will happen; until it is confirmed, nothing is recorded.
    assert "decommissioned on 2026-11-08" in page.get_by_role("alert").inner_text()
    with console.server.admin() as http:
        listed = http.get("/v1/customers/acme/instances").json()
    assert all(i["retired_on"] is None for i in listed)
    page.get_by_role("button", name="Retire it as of 2026-11-08").click()
    assert "retired 2026-11-08" in page.locator(f"#instance-{PRODUCTION}").inner_text()
    page.locator(f"#instance-{PRODUCTION}").get_by_role("button", name="Undo retirement").click()
    assert "retired" not in page.locator(f"#instance-{PRODUCTION}").inner_text()

    page.goto(console.url + "/ui/")
    page.get_by_label("Run an evaluation as of").fill("2026-11-08")
    page.get_by_role("button", name="Run evaluation").focus()
    page.keyboard.press("Enter")  # a real button: reachable and pressed from the keyboard
    page.wait_for_url(re.compile(r"/ui/\?as_of=2026-11-08"))
    assert "as of 2026-11-08" in page.locator("p.meta").inner_text()
    with console.server.admin() as http:
        runs = http.get("/v1/evaluations", params={"as_of": "2026-11-08"}).json()
    assert len(runs) >= 2


def test_an_admin_creates_and_revokes_a_token_which_ends_its_sessions(
    browser: Browser, context: BrowserContext, console: Console
) -> None:
    page = sign_in(context, console, console.admin)
    page.get_by_role("link", name="Tokens").click()
    page.get_by_label("Name").fill("olga")
    page.get_by_label("Role").select_option("viewer")
    page.get_by_role("button", name="Create token").click()
    olga = page.locator(".shown-once code.secret").inner_text()
    assert olga.startswith("srt_")

    other = browser.new_context(ignore_https_errors=True)
    try:
        olga_page = sign_in(other, console, olga)
        page.get_by_role("button", name="Revoke olga").click()
        assert (
            "every console session signed in with it ends" in page.get_by_role("alert").inner_text()
        )
        page.get_by_role("link", name="Cancel").click()  # a misclick changes nothing
        assert page.locator("tbody", has_text="olga").count() == 1
        olga_page.reload()
        assert "/ui/login" not in olga_page.url
        page.get_by_role("button", name="Revoke olga").click()
        page.get_by_role("button", name="Revoke olga").click()  # the confirmation's own button
        assert page.locator("tbody", has_text="olga").count() == 0
        olga_page.reload()
        assert "/ui/login" in olga_page.url  # her session ended with her token
    finally:
        other.close()


def test_revoking_a_licence_key_takes_a_second_step_that_says_what_it_does(
    context: BrowserContext, console: Console
) -> None:
    page = sign_in(context, console, console.admin)
    page.goto(console.url + "/ui/customers/acme#keys")
    page.get_by_role("button", name="Issue a licence key").click()
    key_id = page.locator("table", has_text="Revoke").locator("code").last.inner_text()
    page.get_by_role("button", name=f"Revoke {key_id}").click()
    assert "stop phoning home" in page.get_by_role("alert").inner_text()
    with console.server.admin() as http:
        keys = http.get("/v1/customers/acme").json()["license_keys"]
    assert all(k["revoked_at"] is None for k in keys if k["key_id"] == key_id)
    page.get_by_role("button", name=f"Revoke {key_id}").click()
    page.wait_for_url(re.compile(r"/ui/customers/acme"))
    with console.server.admin() as http:
        keys = http.get("/v1/customers/acme").json()["license_keys"]
    assert [k["revoked_at"] is not None for k in keys if k["key_id"] == key_id] == [True]


def test_a_change_without_the_csrf_token_is_refused(
    context: BrowserContext, console: Console
) -> None:
    sign_in(context, console, console.admin)
    with console.server.admin() as http:
        before = http.get("/v1/customers/acme").json()["license_keys"]
    forms: list[dict[str, str | float | bool]] = [{}, {"csrf": "forged"}]
    for form in forms:
        answer = context.request.post(console.url + "/ui/customers/acme/license-keys", form=form)
        assert answer.status == 403
        assert "CSRF" in answer.text()
        revoke = context.request.post(
            console.url + f"/ui/license-keys/{before[0]['key_id']}/revoke",
            form={**form, "confirm": "yes"},
        )
        assert revoke.status == 403
    with console.server.admin() as http:
        keys = http.get("/v1/customers/acme").json()["license_keys"]
    assert keys == before


def test_the_session_cookie_and_the_security_headers(
    context: BrowserContext, console: Console
) -> None:
    page = context.new_page()
    answer = page.goto(console.url + "/ui/login")
    assert answer is not None
    policy = answer.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert answer.headers["x-content-type-options"] == "nosniff"
    page.get_by_label("Token").fill(console.viewer)
    page.get_by_role("button", name="Sign in").click()
    (cookie,) = context.cookies()
    assert cookie["name"] == "statreport_session"
    assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"]) == (True, True, "Strict")
    assert cookie["path"] == "/ui"
    # The browser dates the cookie by its own clock, not by this process's moved one.
    lifetime = cookie["expires"] - time_machine.escape_hatch.time.time()
    assert 11.9 * 3600 < lifetime <= 12 * 3600
    assert cookie["value"] not in page.content()


def test_sign_out_ends_the_session_on_the_server(context: BrowserContext, console: Console) -> None:
    page = sign_in(context, console, console.viewer)
    (cookie,) = context.cookies()
    page.get_by_role("button", name="Sign out").click()
    assert page.url.endswith("/ui/login")
    # The old cookie, replayed by hand, opens nothing any more.
    with httpx.Client(
        verify=console.server.verify(), cookies={cookie["name"]: cookie["value"]}
    ) as http:
        replayed = http.get(console.url + "/ui/", follow_redirects=False)
    assert replayed.status_code == 303
    assert replayed.headers["location"].startswith("/ui/login")


def test_the_statement_and_an_email_as_sent_open_from_the_console(
    context: BrowserContext, console: Console
) -> None:
    page = sign_in(context, console, console.admin)
    page.goto(console.url + "/ui/weekly")
    page.get_by_label("Send now, as of").fill("2026-11-08")
    page.get_by_role("button", name="Dry run first").click()
    assert "Dry run" in page.locator("[role=status]").inner_text()
    assert "dry run" in page.locator("[role=status] tbody").inner_text()
    preview = page.locator("[role=status] tr", has_text="alice@vendor.example")
    preview.get_by_text("Read the email").click()  # the body, to read before sending
    assert "Licence compliance, week" in preview.locator("pre.email").inner_text()
    page.get_by_role("button", name="Send now").click()
    # No SMTP server is configured in this test: the emails go to the outbox.
    sent = page.locator("[role=status] tbody").inner_text()
    assert "sent: " in sent
    assert "outbox" in sent
    page.locator("nav.weeks a").first.click()
    # Long outbox paths and evaluation ids wrap inside the table, not past the window.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.get_by_role("link", name="alice@vendor.example").click()
    assert "Licence compliance" in page.locator("pre.email").inner_text()
    assert "SHA-256" in page.locator("p.meta").inner_text()

    page.goto(console.url + "/ui/customers/acme")
    page.get_by_label("From", exact=True).fill("2026-10-01")
    page.get_by_label("To", exact=True).fill("2026-11-08")
    page.get_by_role("button", name="Show").click()
    with context.expect_page() as opened:
        page.get_by_role("link", name="Statement for this period").click(modifiers=["Shift"])
    statement = opened.value
    statement.wait_for_load_state()
    assert "2026-10-01" in statement.content()
    assert "SHA-256" in statement.content()
    # A bare address: the period the customer's page shows by default.
    statement.goto(console.url + "/ui/customers/acme/statement")
    start = latest_finished_day() - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    assert start.isoformat() in statement.content()
    assert "SHA-256" in statement.content()


def test_five_failed_sign_ins_a_minute_are_answered_429(server_factory: ServerFactory) -> None:
    server = server_factory()
    with httpx.Client(base_url=server.url, verify=server.verify()) as http:
        failures = [http.post("/ui/login", data={"token": f"wrong-{n}"}) for n in range(5)]
        assert [f.status_code for f in failures] == [401] * 5
        assert "not known" in failures[0].text
        blocked = http.post("/ui/login", data={"token": "wrong-again"})
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) >= 1
    assert "Wait" in blocked.text


def test_a_form_too_large_or_of_another_type_is_refused(server_factory: ServerFactory) -> None:
    server = server_factory()
    with httpx.Client(base_url=server.url, verify=server.verify()) as http:
        large = http.post("/ui/login", data={"token": "x" * (2 << 20)})
        as_json = http.post("/ui/login", json={"token": "x"})
        garbled = http.post(
            "/ui/login",
            content=b"token=%ff%fe",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        unsigned_page = http.get("/ui/customers/acme?from=2026-11-01")
        unsigned_form = http.post("/ui/customers/acme/license-keys", data={"csrf": "x"})
    # Without a session, a page leads to sign-in and back; a form's post changes nothing.
    assert unsigned_page.status_code == 303
    assert unsigned_page.headers["location"] == (
        "/ui/login?next=/ui/customers/acme%3Ffrom%3D2026-11-01"
    )
    assert unsigned_form.status_code == 303
    assert unsigned_form.headers["location"] == "/ui/login?next=/ui/"
    assert large.status_code == 413
    assert "at most 1024 KiB" in html.unescape(large.text)
    assert as_json.status_code == 415
    assert garbled.status_code == 400


def test_long_lists_come_a_page_at_a_time(server_factory: ServerFactory) -> None:
    server = server_factory()
    with server.admin() as http:
        for n in range(101):
            document = customer(f"am{n % 3}@vendor.example", WORKED_EXAMPLE_ORDER)
            assert http.put(f"/v1/customers/c{n:03d}", json=document).status_code == 200
    with httpx.Client(base_url=server.url, verify=server.verify()) as http:
        signed_in = http.post("/ui/login", data={"token": ADMIN_TOKEN})
        assert signed_in.status_code == 303
        first = http.get("/ui/customers")
        second = http.get("/ui/customers", params={"start": 100})
        searched = http.get("/ui/customers", params={"q": "c10"})
    assert "Customers 1\u2013100 of 101" in first.text
    assert 'href="/ui/customers?start=100" rel="next"' in first.text
    assert "c099" in first.text
    assert "c100" not in first.text
    assert "Customers 101\u2013101 of 101" in second.text
    assert "c100" in second.text
    assert "c099" not in second.text
    assert "c100" in searched.text
    assert "pager" not in searched.text  # two matches: one page


def test_an_admin_writes_a_working_note_that_the_finding_carries(
    context: BrowserContext, console: Console
) -> None:
    page = sign_in(context, console, console.admin)
    row = page.locator("section.findings tbody tr", has_text="acme")
    row.get_by_role("link", name="Evidence").click()
    evidence_url = page.url
    notes = page.locator("#notes")
    assert "No note yet" in notes.inner_text()
    page.get_by_label(re.compile("^Add a note")).fill("called Jane 12-03, <b>PO</b> expected")
    page.get_by_role("button", name="Add the note").click()
    assert page.url.split("#")[0] == evidence_url  # back to the same run's evidence
    note = page.locator("#notes p.note")
    assert "adam: called Jane 12-03, <b>PO</b> expected" in note.inner_text()  # text, not HTML
    page.emulate_media(media="print")  # evidence handed to the customer leaves staff's notes out
    assert not page.locator("#notes").is_visible()
    page.emulate_media(media="screen")
    page.goto(console.url + "/ui/")
    listed = page.locator("section.findings tbody tr", has_text="acme")
    assert "adam: called Jane 12-03" in listed.locator(".note-latest").inner_text()

    context.clear_cookies()
    viewer = sign_in(context, console, console.viewer)
    viewer.goto(evidence_url)
    assert "called Jane" in viewer.locator("#notes").inner_text()
    assert viewer.get_by_role("button", name="Add the note").count() == 0
