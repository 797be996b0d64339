"""What a run announces (SPEC §14 v3): each finding compared with what was last announced
for its ``finding_id``, and the events that follow, written to the outbox in the run's own
transaction, so that a crash at any moment loses none and sends none twice. Sending them is
the ``webhooks`` package's work.

Only a kept run whose ``as_of`` is not earlier than any earlier run's announces: re-judging
an old day tells nobody anything new. An event's id is derived from what it announces (the
finding and the type; for ``evaluation.completed``, the run), so the same thing announced
again is the same event, and an endpoint gets it at most once."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from analytics import repository
from core.database import Connection

#: The types a run can announce, in the order a run's events are written.
FINDING_EVENTS = (
    "finding.opened",
    "finding.material",
    "finding.deadline_near",
    "finding.overdue",
    "finding.resolved",
)
RUN_EVENT = "evaluation.completed"
TEST_EVENT = "webhook.test"
EVENT_TYPES = (*FINDING_EVENTS, RUN_EVENT, TEST_EVENT)
#: An over-use finding in its window with this many days left, or fewer, is near its deadline.
DEADLINE_NEAR_DAYS = 7


def event_id(*parts: str) -> str:
    """``evt_`` and 26 characters derived from what the event announces."""
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    return "evt_" + base64.b32encode(digest).decode().lower()[:26]


@dataclass(frozen=True)
class Event:
    """One event for the outbox: its id, type and data (``finding``, ``evaluation_id``,
    ``customer_name``; or a run's counts)."""

    event_id: str
    type: str
    data: dict[str, Any]


def _overuse_flags(finding: dict[str, Any]) -> dict[str, bool]:
    """What has been announced of an over-use finding once it is announced as it is now."""
    return {
        "material": bool(finding.get("material")),
        "deadline_near": finding["status"] == "in_window"
        and finding["days_left"] <= DEADLINE_NEAR_DAYS,
        "overdue": finding["status"] == "overdue",
        "resolved": finding["status"] == "regularized",
    }


def compare(
    run: dict[str, Any], previous: dict[str, dict[str, Any]]
) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, dict[str, Any]]]:
    """The ``(type, finding)`` pairs a run announces, given what was last announced of each
    finding (``previous``, by id), and what is announced of each once they are sent."""
    announced: list[tuple[str, dict[str, Any]]] = []
    states: dict[str, dict[str, Any]] = {}
    present = set()
    for finding in run["findings"]:
        fid = finding["finding_id"]
        present.add(fid)
        before = previous.get(fid)
        overuse = finding["kind"] == "overuse"
        now = _overuse_flags(finding) if overuse else {"resolved": False}
        if before is None:
            announced.append(("finding.opened", finding))
            states[fid] = {**now, "kind": finding["kind"], "finding": finding}
            continue
        flags = dict(before)
        if overuse:
            for flag, kind in (
                ("material", "finding.material"),
                ("deadline_near", "finding.deadline_near"),
                ("overdue", "finding.overdue"),
                ("resolved", "finding.resolved"),
            ):
                if now[flag] and not before.get(flag):
                    announced.append((kind, finding))
                    flags[flag] = True
        else:
            flags["resolved"] = False  # present again
        states[fid] = {**flags, "kind": finding["kind"], "finding": finding}
    for fid, before in previous.items():
        if fid in present or before["kind"] == "overuse" or before.get("resolved"):
            continue
        announced.append(("finding.resolved", before["finding"]))
        states[fid] = {**before, "resolved": True}
    return announced, states


def announce(con: Connection, run: dict[str, Any]) -> list[Event]:
    """Announce a kept run, in its transaction: compare, remember what is announced, and put
    each new event in the outbox of every enabled endpoint that subscribes to its type."""
    if repository.later_run_exists(con, as_of=run["as_of"], evaluation_id=run["evaluation_id"]):
        return []
    ids = [f["finding_id"] for f in run["findings"]]
    previous = repository.announced_states(con, finding_ids=ids)
    pairs, states = compare(run, previous)
    names = repository.customer_name_map(con)
    events = [
        Event(
            event_id(finding["finding_id"], kind),
            kind,
            {
                "finding": finding,
                "evaluation_id": run["evaluation_id"],
                "customer_name": names.get(finding["customer_id"], finding["customer_id"]),
            },
        )
        for kind, finding in pairs
    ]
    counts: dict[str, int] = {}
    for finding in run["findings"]:
        counts[finding["kind"]] = counts.get(finding["kind"], 0) + 1
    events.append(
        Event(
            event_id(run["evaluation_id"], RUN_EVENT),
            RUN_EVENT,
            {"evaluation_id": run["evaluation_id"], "as_of": run["as_of"], "findings": counts},
        )
    )
    repository.save_announced_states(con, states=states, at=run["evaluated_at"])
    repository.enqueue_events(
        con, events=[(e.event_id, e.type, e.data) for e in events], at=run["evaluated_at"]
    )
    return events
