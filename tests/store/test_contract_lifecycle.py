"""The Store contract: opening and closing a database, its migrations, the readiness probe's write,
and the notifier that wakes the loops after each commit."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import pytest

from service.models import Source, TaskStatus
from service.notify import Topic
from service.store import Store
from tests.store.contract import Backend, covers
from tests.store.test_contract import CALLBACK_URL, OWNER, new_task
from tests.store.test_contract_webhooks import subscription

T = TypeVar("T")


@covers("open", "close", "pending_migrations")
async def test_open_applies_the_migrations_once_and_a_reopened_database_keeps_what_was_written(
    backend: Backend,
) -> None:
    first = backend.client()
    applied = await first.open()
    assert applied, "a new database gets its schema"
    assert await first.pending_migrations() == []
    task, _ = await first.create_task(new_task())
    await first.close()
    again = backend.client()
    assert await again.open() == [], "nothing is applied twice"
    assert await again.pending_migrations() == []
    kept = await again.get_task(task.id)
    assert kept is not None
    assert kept.status is TaskStatus.QUEUED


@covers("open", "pending_migrations")
async def test_a_database_opened_without_migrations_is_read_as_it_is(backend: Backend) -> None:
    first = backend.client()
    await first.open()
    task, _ = await first.create_task(new_task())
    await first.close()
    again = backend.client()
    assert await again.open(apply_migrations=False) == []
    assert await again.pending_migrations() == []
    assert await again.get_task(task.id) == task


@covers("check_writable", "close")
async def test_the_write_check_passes_on_an_open_store_changes_nothing_visible_and_fails_once_closed(
    backend: Backend,
) -> None:
    store = backend.client()
    await store.open()
    task, _ = await store.create_task(new_task())
    events = await store.list_events(after=0, types=(), task_id=None, limit=100)
    gauges = await store.gauges()
    await store.check_writable()
    await store.check_writable()
    assert await store.list_events(after=0, types=(), task_id=None, limit=100) == events
    assert await store.gauges() == gauges
    await store.close()
    try:
        await store.check_writable()
    except Exception:
        pass
    else:
        pytest.fail("a closed store said it could be written")
    assert task.id


async def committed(store: Store, work: Awaitable[T]) -> tuple[T, set[Topic]]:
    """What ``work`` returned, and the topics the notifier was told of while it ran (asked after it
    committed, so nothing is waited for)."""
    since = {topic: store.notifier.since(topic) for topic in Topic}
    result = await work
    told = {topic for topic in Topic if await store.notifier.wait(topic, 0.0, since=since[topic])}
    return result, told


@covers("notifier")
async def test_each_commit_tells_the_notifier_the_topics_it_touched(store: Store) -> None:
    (task, _), told = await committed(store, store.create_task(new_task()))
    assert {Topic.SUBMIT, Topic.EVENTS} <= told  # one more to send, and its event
    await store.claim_submissions(1001.0, 10, owner=OWNER, lease=0.0, cap=0)
    assert await store.note_run_started(task.id, 1001.0, callback_url=CALLBACK_URL, owner=OWNER)
    _, told = await committed(
        store, store.record_submitted(task.id, "w-1", "t", at=1002.0, poll_at=1002.0, source=Source.SUBMIT)
    )
    assert {Topic.LOOK, Topic.EVENTS} <= told  # its first look is due at once
    _, told = await committed(
        store, store.record_callback(task.id, at=1003.0, content_type=None, body=b"{}", claimed_status=None)
    )
    assert Topic.LOOK in told
    await store.create_subscription(subscription())
    _, told = await committed(
        store, store.finish(task.id, TaskStatus.CANCELLED, at=1004.0, source=Source.CANCEL)
    )
    assert {Topic.SUBMIT, Topic.EVENTS, Topic.DELIVER} <= told  # a slot freed, and a delivery due
