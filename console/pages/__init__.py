"""The staff console's pages (SPEC §12), one module a page. Each page is a route that calls the
same services as the JSON API and renders: nothing here decides a rule, it only shows what the
services answer. The shared parts (sessions, the route class, forms, paging, errors) are in
``console.web``."""

from __future__ import annotations

from fastapi import APIRouter

from console.pages import (
    addon_forms,
    audit,
    customer_forms,
    customers,
    findings,
    order_forms,
    portal,
    signin,
    tokens,
    webhooks,
    weekly,
)

#: Every page under ``/ui/``.
router = APIRouter()
for _page in (
    signin,
    findings,
    customers,
    customer_forms,
    order_forms,
    addon_forms,
    weekly,
    webhooks,
    audit,
    tokens,
    portal,
):
    router.include_router(_page.router)
#: ``/``, which leads to the console.
root_router = signin.root_router
