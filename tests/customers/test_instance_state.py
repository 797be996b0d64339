"""An instance's state in words (the console's instance list): what a new, active, silent or
retired installation reads as, with the rule one hover away."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from customers.schemas import Instance
from customers.service import instance_state

NOW = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)


def _instance(last: str, *, active: bool, retired: str | None = None) -> Instance:
    return Instance(
        instance_id="0b9a4f2c-7d3e-4e58-8f1a-3c2d1e0f9a77",
        environment="production",
        product_version="1.1.3",
        first_report_on=date(2026, 11, 1),
        last_report_on=date.fromisoformat(last),
        reports=12,
        last_sequence=11,
        active_on_as_of=active,
        retired_on=date.fromisoformat(retired) if retired else None,
    )


@pytest.mark.parametrize(
    ("last", "active", "retired", "words"),
    [
        # A new installation, minutes after its first report: not "inactive".
        ("2026-12-06", False, None, "reported today"),
        ("2026-12-06", True, None, "reported today, active on 2026-12-05"),
        ("2026-12-04", True, None, "active on 2026-12-05"),
        ("2026-11-27", False, None, "silent 9 days"),
        ("2026-12-05", False, None, "silent 1 day"),
        ("2026-11-20", False, "2026-11-20", "retired 2026-11-20"),
        # Reporting again after its retirement, it counts again.
        ("2026-12-04", True, "2026-11-20", "active on 2026-12-05"),
    ],
)
def test_each_state_reads_as_what_it_means(
    last: str, active: bool, retired: str | None, words: str
) -> None:
    state, rule = instance_state(_instance(last, active=active, retired=retired), now=NOW)
    assert state == words
    assert "Active on a finished day (here 2026-12-05, UTC)" in rule
