"""The Store contract for subscriptions: kept, listed, changed, deleted, and their secrets rotated."""

from __future__ import annotations

import dataclasses

from service.store import Store
from tests.store.contract import covers
from tests.store.test_contract import new_task
from tests.store.test_contract_webhooks import subscription


@covers(
    "create_subscription", "get_subscription", "list_subscriptions", "update_subscription",
    "delete_subscription",
)  # fmt: skip
async def test_subscriptions_are_kept_listed_changed_and_deleted(store: Store) -> None:
    later = subscription(
        at=900.0, description="a", event_types=("task.succeeded",), metadata_filter={"k": "v"}
    )
    earlier = subscription("https://hooks.example/b", at=800.0)
    assert await store.create_subscription(later) == later
    await store.create_subscription(earlier)
    assert await store.get_subscription(later.id) == later
    assert await store.get_subscription("sub_nope") is None
    assert [s.id for s in await store.list_subscriptions()] == [earlier.id, later.id]  # oldest first
    changes = {
        "url": "https://hooks.example/c",
        "event_types": ("task.failed", "task.succeeded"),
        "metadata_filter": {},
        "description": "c",
        "enabled": False,
    }
    changed = await store.update_subscription(later.id, changes, 950.0)
    assert changed == dataclasses.replace(
        later, url="https://hooks.example/c", event_types=("task.failed", "task.succeeded"),
        metadata_filter={}, description="c", enabled=False, updated_at=950.0,
    )  # fmt: skip
    assert await store.get_subscription(later.id) == changed
    assert await store.update_subscription("sub_nope", {"description": "x"}, 960.0) is None
    assert await store.delete_subscription(later.id)
    assert not await store.delete_subscription(later.id)
    assert await store.get_subscription(later.id) is None
    assert [s.id for s in await store.list_subscriptions()] == [earlier.id]


@covers("rotate_secret", "get_subscription", "attempt_context")
async def test_a_rotated_secret_signs_beside_the_new_one_until_its_window_ends(store: Store) -> None:
    sub = subscription(secret="whsec_old")
    await store.create_subscription(sub)
    assert await store.rotate_secret(sub.id, "whsec_new", keep_old_until=2000.0, at=1000.0)
    rotated = await store.get_subscription(sub.id)
    assert rotated is not None
    assert (rotated.secret, rotated.previous_secret, rotated.previous_expires_at, rotated.updated_at) == (
        "whsec_new", "whsec_old", 2000.0, 1000.0,
    )  # fmt: skip
    assert rotated.signing_secrets(1999.0) == ["whsec_new", "whsec_old"]
    assert rotated.signing_secrets(2000.0) == ["whsec_new"]
    # Only the latest previous secret is kept.
    assert await store.rotate_secret(sub.id, "whsec_newer", keep_old_until=3000.0, at=1500.0)
    task, _ = await store.create_task(new_task(at=1600.0))
    [event] = await store.list_events(after=0, types=(), task_id=task.id, limit=10)
    _, current = await store.attempt_context(event.seq, sub.id)
    assert current is not None
    assert current.signing_secrets(1600.0) == ["whsec_newer", "whsec_new"]
    assert not await store.rotate_secret("sub_nope", "whsec_x", keep_old_until=1.0, at=1.0)
