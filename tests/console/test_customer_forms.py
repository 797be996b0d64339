"""A customer's document edited through the console's forms (issue 28): a new customer, an
order form, an add-on, a counting rule, in a real browser against the real server; the
API's validation messages beside the fields; a colleague's change never overwritten; a
removal confirmed, then put back from the audit log."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page

from tests import clock
from tests.console.conftest import Console, sign_in, staff_token
from tests.support import customer, start_thread_server

pytestmark = pytest.mark.moment(clock.WRITTEN_ON)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    server = start_thread_server(tmp_path_factory.mktemp("forms"))
    server.add_customer("initech", customer("carol@vendor.example"))
    viewer, admin = staff_token(server, "vera", "viewer"), staff_token(server, "adam", "admin")
    yield Console(server, viewer, admin)
    server.stop()


def field_error(page: Page, name: str) -> str:
    return page.locator(f"#error-{re.escape(name)}").inner_text()


def stored(console: Console, customer_id: str) -> dict[str, Any]:
    with console.server.admin() as http:
        answer = http.get(f"/v1/customers/{customer_id}")
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


def test_an_admin_creates_a_customer_and_its_order_form_with_errors_beside_the_fields(
    context: BrowserContext, console: Console
) -> None:
    page = sign_in(context, console, console.admin)
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Customers").click()
    page.get_by_role("link", name="New customer").click()
    page.get_by_label("Customer id").fill("hooli corp")
    page.get_by_label("Name").fill("Hooli")
    page.get_by_label("Account manager").fill("dana@vendor.example")
    page.get_by_role("button", name="Create the customer").click()
    assert "letters, digits" in field_error(page, "customer_id")
    assert "Nothing was saved" in page.locator("#form-errors").inner_text()
    assert page.get_by_label("Name").input_value() == "Hooli"  # what was typed is kept

    page.get_by_label("Customer id").fill("initech")  # taken
    page.get_by_role("button", name="Create the customer").click()
    assert "already exists" in page.locator("#form-errors").inner_text()
    assert stored(console, "initech")["name"] == "Carol"  # not overwritten

    page.get_by_label("Customer id").fill("hooli")
    page.get_by_role("button", name="Create the customer").click()
    page.wait_for_url(re.compile(r"/ui/customers/hooli"))
    assert "Customer hooli created" in page.locator("#saved").inner_text()
    assert stored(console, "hooli")["account_manager"] == "dana@vendor.example"

    page.get_by_role("link", name="Add an order form").click()
    page.get_by_label("Order id").fill("OF-1")
    page.get_by_label("Starts").fill("2026-10-01")
    page.get_by_label("Ends").fill("2026-09-30")
    page.get_by_label("User packs").fill("5")
    page.get_by_label("Tenants", exact=True).fill("three")
    page.get_by_role("button", name="Add the order form").click()
    assert "valid integer" in field_error(page, "tenants")
    page.get_by_label("Tenants", exact=True).fill("3")
    page.get_by_role("button", name="Add the order form").click()
    errors = page.locator("#form-errors").inner_text()
    assert "order OF-1 ends (2026-09-30) before it starts (2026-10-01)" in errors
    page.get_by_label("Ends").fill("2027-09-30")
    page.get_by_role("button", name="Add the order form").click()
    errors = page.locator("#form-errors").inner_text()
    assert "sells user_packs but sets no users_per_pack" in errors
    page.get_by_label("Users per pack").fill("10")
    page.get_by_label("Users, counted as").select_option("production")
    page.get_by_role("button", name="Add the order form").click()
    assert "Order form OF-1 added" in page.locator("#saved").inner_text()
    (order,) = stored(console, "hooli")["orders"]
    assert order == {
        "order_id": "OF-1",
        "start": "2026-10-01",
        "end": "2027-09-30",
        "entitlements": {"user_packs": 5, "users_per_pack": 10, "tenants": 3},
        "addons": [],
        "counting": {"users": "production"},
    }
    caption = page.locator("#orders table.order caption").inner_text()
    assert "Users: production" in caption


def test_an_add_on_is_added_edited_removed_and_put_back_from_the_audit_log(
    context: BrowserContext, console: Console
) -> None:
    with console.server.admin() as http:
        document = customer(
            "erin@vendor.example",
            {
                "order_id": "OF-7",
                "start": "2026-10-01",
                "end": "2027-09-30",
                "entitlements": {"user_packs": 2, "users_per_pack": 25},
            },
        )
        assert http.put("/v1/customers/umbrella", json=document).status_code == 200
    page = sign_in(context, console, console.admin)
    page.goto(console.url + "/ui/customers/umbrella")
    page.get_by_role("link", name="Add an add-on").click()
    page.get_by_label("Add-on id").fill("AO-1")
    page.get_by_label("Effective from").fill("2028-01-01")
    page.get_by_label("User packs").fill("1")
    page.get_by_role("button", name="Add the add-on").click()
    assert "outside its order's term" in page.locator("#form-errors").inner_text()
    page.get_by_label("Effective from").fill("2026-12-01")
    page.get_by_role("button", name="Add the add-on").click()
    assert "Add-on AO-1 added to order OF-7" in page.locator("#saved").inner_text()

    row = page.locator("#orders tr", has_text="add-on AO-1")
    row.get_by_role("link", name="Edit").click()
    assert page.get_by_label("User packs").input_value() == "1"
    page.get_by_label("User packs").fill("2")
    page.get_by_role("button", name="Save the add-on").click()
    order = stored(console, "umbrella")["orders"][0]
    assert order["addons"] == [
        {"addon_id": "AO-1", "effective": "2026-12-01", "entitlements": {"user_packs": 2}}
    ]

    row = page.locator("#orders tr", has_text="add-on AO-1")
    row.get_by_role("button", name="Remove").click()
    assert page.get_by_role("heading", name="Remove add-on AO-1 from order OF-7?").is_visible()
    page.get_by_role("button", name="Remove AO-1").click()
    assert "Add-on AO-1 removed" in page.locator("#saved").inner_text()
    assert stored(console, "umbrella")["orders"][0]["addons"] == []

    page.locator("#saved").get_by_role("link", name="audit log").click()
    newest = page.locator("article.audit").first
    assert "removed" in newest.locator("table.diff").inner_text()
    newest.get_by_role("button", name=re.compile("Put back the document")).click()
    assert "every later change to them is undone" in page.locator("main").inner_text()
    page.get_by_role("button", name="Put it back").click()
    assert "again as it was before adam's change" in page.locator("#saved").inner_text()
    order = stored(console, "umbrella")["orders"][0]
    assert [a["addon_id"] for a in order["addons"]] == ["AO-1"]


def test_a_form_opened_before_a_colleagues_change_does_not_overwrite_it(
    context: BrowserContext, console: Console
) -> None:
    page = sign_in(context, console, console.admin)
    page.goto(console.url + "/ui/customers/initech/details")
    page.get_by_label("Name").fill("Initech (mine)")
    with console.server.admin() as http:  # a colleague, meanwhile, through the API
        document = {**customer("carol@vendor.example"), "name": "Initech (theirs)"}
        assert http.put("/v1/customers/initech", json=document).status_code == 200
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Save the account details").click()
    assert posted.value.status == 409
    assert "changed by someone else" in page.locator("#form-errors").inner_text()
    assert stored(console, "initech")["name"] == "Initech (theirs)"
    csrf = page.locator("input[name=csrf]").first.get_attribute("value") or ""
    for version in ("", "yesterday"):  # a form that says no version, or a wrong one
        answer = context.request.post(
            console.url + "/ui/customers/initech/details",
            form={"csrf": csrf, "version": version, "name": "Initech (forged)"},
        )
        assert answer.status == 409
        assert "Reload the customer" in answer.text()
    assert stored(console, "initech")["name"] == "Initech (theirs)"


def test_a_viewer_gets_no_form_and_cannot_open_one(
    context: BrowserContext, console: Console
) -> None:
    page = sign_in(context, console, console.viewer)
    page.goto(console.url + "/ui/customers")
    assert page.get_by_role("link", name="New customer").count() == 0
    page.goto(console.url + "/ui/customers/initech")
    assert page.get_by_role("link", name="Edit account details").count() == 0
    for address in ("/ui/new-customer", "/ui/customers/initech/details"):
        answer = page.goto(console.url + address)
        assert answer is not None
        assert answer.status == 403
