"""The announce rule of SPEC §14 v3, on its own: what a run says given what was last said."""

from __future__ import annotations

from typing import Any

from analytics.announcements import compare, event_id


def overuse(**changes: Any) -> dict[str, Any]:
    finding = {
        "finding_id": "f_0000000000000001",
        "kind": "overuse",
        "customer_id": "acme",
        "metric": "users",
        "status": "in_window",
        "days_left": 20,
        "material": False,
    }
    return {**finding, **changes}


def silent(**changes: Any) -> dict[str, Any]:
    return {
        "finding_id": "f_0000000000000002",
        "kind": "instance_silent",
        "customer_id": "acme",
        **changes,
    }


def announce(runs: list[list[dict[str, Any]]]) -> list[list[str]]:
    """What each run in turn announces, carrying the states from one to the next."""
    states: dict[str, dict[str, Any]] = {}
    said = []
    for findings in runs:
        pairs, changed = compare({"findings": findings}, states)
        states = {**states, **changed}
        said.append([kind for kind, _ in pairs])
    return said


def test_an_overuse_episode_is_announced_at_each_turn_once() -> None:
    assert announce(
        [
            [overuse()],
            [overuse()],
            [overuse(material=True)],
            [overuse(material=True, days_left=7)],
            [overuse(material=True, days_left=3)],
            [overuse(material=True, status="overdue", days_left=-1)],
            [overuse(material=True, status="overdue", days_left=-2)],
            [overuse(material=True, status="regularized", days_left=-3)],
            [overuse(material=True, status="regularized", days_left=-3)],
        ]
    ) == [
        ["finding.opened"],
        [],
        ["finding.material"],
        ["finding.deadline_near"],
        [],
        ["finding.overdue"],
        [],
        ["finding.resolved"],
        [],
    ]


def test_a_finding_first_seen_late_is_opened_once_not_every_turn_it_missed() -> None:
    assert announce(
        [
            [overuse(material=True, status="overdue", days_left=-5)],
            [overuse(material=True, status="overdue", days_left=-6)],
        ]
    ) == [["finding.opened"], []]


def test_another_kind_is_resolved_when_a_run_no_longer_has_it() -> None:
    assert announce([[silent()], [silent()], [], [], [silent()]]) == [
        ["finding.opened"],
        [],
        ["finding.resolved"],
        [],
        [],  # back again: its opened event was sent once already
    ]
    assert announce([[overuse()], []]) == [["finding.opened"], []]  # an episode needs regularizing


def test_event_ids_are_derived_from_what_they_announce() -> None:
    first = event_id("f_0000000000000001", "finding.opened")
    assert first == event_id("f_0000000000000001", "finding.opened")
    assert first != event_id("f_0000000000000001", "finding.overdue")
    assert first.startswith("evt_")
    assert len(first) == 4 + 26
