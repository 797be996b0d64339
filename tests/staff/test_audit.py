"""What a change did, field by field (the audit log's diff)."""

from __future__ import annotations

from staff.audit import Change, changes


def test_an_add_on_added_and_a_pack_count_changed_are_named_by_their_order_and_add_on() -> None:
    before = {
        "name": "ACME",
        "orders": [
            {"order_id": "OF-1", "entitlements": {"user_packs": 5}, "addons": []},
            {"order_id": "OF-2", "entitlements": {"user_packs": 1}, "addons": []},
        ],
    }
    after = {
        "name": "ACME",
        "orders": [
            # The same orders in another order: nothing changes for that.
            {"order_id": "OF-2", "entitlements": {"user_packs": 1}, "addons": []},
            {
                "order_id": "OF-1",
                "entitlements": {"user_packs": 6},
                "addons": [{"addon_id": "AO-8", "entitlements": {"user_packs": 1}}],
            },
        ],
    }
    found = changes(before, after)
    assert found == [
        Change("orders[OF-1].addons[AO-8].addon_id", None, "AO-8"),
        Change("orders[OF-1].addons[AO-8].entitlements.user_packs", None, 1),
        Change("orders[OF-1].entitlements.user_packs", 5, 6),
    ]
    assert [c.kind for c in found] == ["added", "added", "changed"]


def test_a_creation_adds_every_field_and_an_undo_removes_one() -> None:
    assert [c.kind for c in changes(None, {"retired_on": "2026-11-08"})] == ["added"]
    (undone,) = changes({"retired_on": "2026-11-08"}, {"retired_on": None})
    assert (undone.path, undone.kind) == ("retired_on", "removed")
