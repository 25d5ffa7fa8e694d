"""Webhook subscriptions: where events go, which ones, and the secrets they are signed with."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from service.store.base import Subscription
from service.store.sqlite.changes import deliveries_due
from service.store.sqlite.db import Database, dumps, fetch_all, fetch_one
from service.store.sqlite.rows import SUB_COLUMNS, subscription_from_row


class Subscriptions:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_subscription(self, sub: Subscription) -> Subscription:
        await self._db.write(
            lambda db: db.execute(
                f"INSERT INTO subscriptions ({SUB_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sub.id,
                    sub.url,
                    dumps(list(sub.event_types)),
                    dumps(sub.metadata_filter),
                    sub.description,
                    int(sub.enabled),
                    sub.disabled_reason,
                    sub.secret,
                    sub.previous_secret,
                    sub.previous_expires_at,
                    sub.failing_since,
                    sub.created_at,
                    sub.updated_at,
                ),
            )
        )
        return sub

    async def get_subscription(self, sub_id: str) -> Subscription | None:
        row = await fetch_one(
            self._db.reader, f"SELECT {SUB_COLUMNS} FROM subscriptions WHERE id = ?", (sub_id,)
        )
        return subscription_from_row(row) if row else None

    async def list_subscriptions(self) -> list[Subscription]:
        rows = await fetch_all(
            self._db.reader, f"SELECT {SUB_COLUMNS} FROM subscriptions ORDER BY created_at, id"
        )
        return [subscription_from_row(r) for r in rows]

    async def update_subscription(
        self, sub_id: str, changes: dict[str, Any], at: float
    ) -> Subscription | None:
        """Apply ``changes`` (url, event_types, metadata_filter, description, enabled); re-enabling
        clears the reason it was disabled and its failure streak."""
        columns: dict[str, tuple[str, Callable[[Any], Any]]] = {
            "url": ("url", str),
            "event_types": ("event_types_json", lambda v: dumps(list(v))),
            "metadata_filter": ("metadata_filter_json", dumps),
            "description": ("description", str),
            "enabled": ("enabled", int),
        }
        sets = ["updated_at = ?"]
        args: list[Any] = [at]
        for key, value in changes.items():
            column, encode = columns[key]
            sets.append(f"{column} = ?")
            args.append(encode(value))
        if changes.get("enabled") is True:
            sets.append("disabled_reason = NULL, failing_since = NULL")

        def work(db: sqlite3.Connection) -> int:
            updated = db.execute(f"UPDATE subscriptions SET {', '.join(sets)} WHERE id = ?", (*args, sub_id))
            if changes.get("enabled") is True:
                deliveries_due(self._db.topics, updated.rowcount)  # what waited for it may go again
            return updated.rowcount

        updated = await self._db.write(work)
        return await self.get_subscription(sub_id) if updated else None

    async def rotate_secret(self, sub_id: str, new_secret: str, *, keep_old_until: float, at: float) -> bool:
        updated = await self._db.write(
            lambda db: (
                db.execute(
                    "UPDATE subscriptions SET previous_secret = secret, previous_expires_at = ?, secret = ?, "
                    "updated_at = ? WHERE id = ?",
                    (keep_old_until, new_secret, at, sub_id),
                ).rowcount
            )
        )
        return updated > 0

    async def delete_subscription(self, sub_id: str) -> bool:
        deleted = await self._db.write(
            lambda db: db.execute("DELETE FROM subscriptions WHERE id = ?", (sub_id,)).rowcount
        )
        return deleted > 0
