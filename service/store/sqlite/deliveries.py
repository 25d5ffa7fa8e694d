"""Webhook deliveries: claiming the due ones under each slot's concurrency, recording attempts (and
the subscription's failure streak), and the delivery log with its retries and recoveries.

Deliveries are made with their event, in the transaction that writes it (``events.Outbox``).
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Collection
from dataclasses import replace
from typing import Any

from service.store.base import AttemptResult, Delivery, DeliveryQuery, Page, Subscription
from service.store.sqlite import changes
from service.store.sqlite.db import Database, fetch_all, fetch_one
from service.store.sqlite.rows import SUB_COLUMNS, page_of, subscription_from_row

_DELIVERY_COLUMNS = (
    "d.id, d.event_seq, e.id AS event_id, d.event_type, d.task_id, d.subscription_id, "
    "COALESCE(s.url, d.url) AS url, d.status, d.attempts, d.max_attempts, d.next_attempt_at, "
    "d.last_status, d.last_error, d.created_at, d.updated_at, d.completed_at, d.last_url, d.claimed_by, "
    "d.claimed_until"
)
# A delivery to a subscription goes where the subscription points now, not where it pointed when the
# delivery was made: its URL is read through the join (deliveries.url keeps the one it was made with).
_DELIVERY_FROM = (
    "deliveries d JOIN events e ON e.seq = d.event_seq LEFT JOIN subscriptions s ON s.id = d.subscription_id"
)
# What concurrency is counted by (``Delivery.slot``): the subscription, or a task's own webhook URL.
_SLOT = "COALESCE(d.subscription_id, 'url:' || d.url)"
# Due, pending, and not claimed or its claim lapsed (parameters: now, now).
_CLAIMABLE = (
    "d.status = 'pending' AND d.next_attempt_at <= ? AND (d.claimed_until IS NULL OR d.claimed_until <= ?)"
)


def _delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(**{k: row[k] for k in row.keys()})  # noqa: SIM118 - sqlite3.Row is not a Mapping


class Deliveries:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- the dispatcher ------------------------------------------------------------------------

    async def claim_deliveries(
        self,
        now: float,
        limit: int,
        *,
        owner: str,
        lease: float,
        per_slot: int,
    ) -> tuple[list[Delivery], bool]:
        # Read and claimed in one write transaction: what is claimed is what the database holds now,
        # whatever any reader's snapshot says, and no other claim can come in between. A slot's
        # claims are counted over every owner, so its limit holds across processes.
        def work(db: sqlite3.Connection) -> tuple[list[Delivery], bool]:
            held: Counter[str] = Counter(
                dict(
                    db.execute(
                        f"SELECT {_SLOT}, COUNT(*) FROM deliveries d INDEXED BY deliveries_claimed "
                        "WHERE d.claimed_by IS NOT NULL AND d.claimed_until > ? GROUP BY 1",
                        (now,),
                    ).fetchall()
                )
            )
            full = [slot for slot, n in held.items() if n >= per_slot]
            slots = ", ".join("?" for _ in full)
            scan = limit * 2
            rows = db.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM {_DELIVERY_FROM} WHERE {_CLAIMABLE} "
                f"AND {_SLOT} NOT IN ({slots}) ORDER BY d.next_attempt_at, d.event_seq LIMIT ?",
                (now, now, *full, scan),
            ).fetchall()
            # Left: more than was read, or some due for a subscription whose slots are all taken.
            left = len(rows) == scan
            if full and not left:
                waiting = (
                    f"SELECT EXISTS (SELECT 1 FROM deliveries d WHERE {_CLAIMABLE} AND {_SLOT} IN ({slots}))"
                )
                left = bool(db.execute(waiting, (now, now, *full)).fetchone()[0])
            claimed: list[Delivery] = []
            for delivery in (_delivery(row) for row in rows):
                if len(claimed) == limit or held[delivery.slot] >= per_slot:
                    left = True
                    continue
                held[delivery.slot] += 1
                claimed.append(replace(delivery, claimed_by=owner, claimed_until=now + lease))
            db.executemany(
                "UPDATE deliveries SET claimed_by = ?, claimed_until = ? WHERE id = ?",
                [(d.claimed_by, d.claimed_until, d.id) for d in claimed],
            )
            return claimed, left

        return await self._db.write(work)

    async def deliveries_waiting(self, now: float, full: Collection[str]) -> tuple[bool, bool]:
        claimable = f"SELECT 1 FROM deliveries d WHERE {_CLAIMABLE} AND {_SLOT}"
        slots = ", ".join("?" for _ in full)
        args: list[Any] = [now, now, *full]
        sql = f"SELECT EXISTS ({claimable} NOT IN ({slots})), "
        if full:  # (an empty IN () is planned as a scan of the table)
            sql += f"EXISTS ({claimable} IN ({slots}))"
            args += args
        else:
            sql += "0"
        row = await fetch_one(self._db.reader, sql, args)
        return (bool(row[0]), bool(row[1])) if row else (False, False)

    async def attempt_context(
        self, seq: int, subscription_id: str | None
    ) -> tuple[tuple[str, str, float, dict[str, Any]] | None, Subscription | None]:
        # One statement, so one round trip to the reader's thread for both (this runs per attempt).
        sub_columns = ", ".join(f"s.{c.strip()}" for c in SUB_COLUMNS.split(","))
        row = await fetch_one(
            self._db.reader,
            f"SELECT e.id AS event_id, e.type AS event_type, e.created_at AS event_at, e.data_json, "
            f"{sub_columns} FROM (SELECT 1) LEFT JOIN events e ON e.seq = ? "
            "LEFT JOIN subscriptions s ON s.id = ?",
            (seq, subscription_id),
        )
        if row is None:  # pragma: no cover - the one-row SELECT always answers
            return None, None
        event = (
            (row["event_id"], row["event_type"], row["event_at"], json.loads(row["data_json"]))
            if row["event_id"] is not None
            else None
        )
        return event, subscription_from_row(row) if row["id"] is not None else None

    async def record_attempt(self, delivery: Delivery, result: AttemptResult) -> bool:
        """Keep the attempt; if the claim still holds, end it, move the delivery on, and track its
        subscription's failure streak."""
        if result.succeeded:
            status = "succeeded"
        elif result.next_attempt_at is None:
            status = "failed"
        else:
            status = "pending"

        def work(db: sqlite3.Connection) -> bool:
            # Kept even when the claim was lost: the request was sent, and the log says so.
            db.execute(
                "INSERT INTO delivery_attempts "
                "(delivery_id, at, url, status_code, duration_ms, error, response_excerpt) "
                "SELECT id, ?, ?, ?, ?, ?, ? FROM deliveries WHERE id = ?",
                (
                    result.at,
                    result.url,
                    result.status_code,
                    result.duration_ms,
                    result.error,
                    result.excerpt,
                    delivery.id,
                ),
            )
            moved = db.execute(
                "UPDATE deliveries SET status = ?, attempts = attempts + 1, next_attempt_at = ?, "
                "last_status = ?, last_error = ?, last_url = COALESCE(?, last_url), updated_at = ?, "
                "completed_at = CASE WHEN ? = 'pending' THEN NULL ELSE ? END, "
                "claimed_by = NULL, claimed_until = NULL "
                "WHERE id = ? AND claimed_by = ?",
                (
                    status,
                    result.next_attempt_at,
                    result.status_code,
                    result.error,
                    result.url,
                    result.at,
                    status,
                    result.at,
                    delivery.id,
                    delivery.claimed_by,
                ),
            ).rowcount
            sub_id = delivery.subscription_id
            if not moved or sub_id is None:
                return moved > 0
            if result.succeeded:
                db.execute("UPDATE subscriptions SET failing_since = NULL WHERE id = ?", (sub_id,))
            else:
                db.execute(
                    "UPDATE subscriptions SET failing_since = COALESCE(failing_since, ?) WHERE id = ?",
                    (result.at, sub_id),
                )
            if result.disable_subscription:
                db.execute(
                    "UPDATE subscriptions SET enabled = 0, disabled_reason = ?, updated_at = ? WHERE id = ?",
                    (result.disable_subscription[:500], result.at, sub_id),
                )
                # What is still queued for a disabled subscription waits, failed, for a recover.
                db.execute(
                    "UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, completed_at = ?, "
                    "last_error = COALESCE(last_error, 'subscription disabled') "
                    "WHERE subscription_id = ? AND status = 'pending'",
                    (result.at, sub_id),
                )
            return True

        return await self._db.write(work)

    # -- the delivery log ----------------------------------------------------------------------

    async def get_delivery(self, delivery_id: str) -> tuple[Delivery, list[dict[str, Any]]] | None:
        row = await fetch_one(
            self._db.reader,
            f"SELECT {_DELIVERY_COLUMNS} FROM {_DELIVERY_FROM} WHERE d.id = ?",
            (delivery_id,),
        )
        if row is None:
            return None
        rows = await fetch_all(
            self._db.reader,
            "SELECT at, url, status_code, duration_ms, error, response_excerpt FROM delivery_attempts "
            "WHERE delivery_id = ? ORDER BY id",
            (delivery_id,),
        )
        attempts = [dict(r) for r in rows]
        return _delivery(row), attempts

    async def list_deliveries(self, query: DeliveryQuery) -> Page[Delivery]:
        where: list[str] = []
        args: list[Any] = []
        for column, value in (
            ("d.subscription_id", query.subscription_id),
            ("d.event_type", query.event_type),
            ("d.task_id", query.task_id),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if query.statuses:
            where.append(f"d.status IN ({', '.join('?' for _ in query.statuses)})")
            args.extend(query.statuses)
        if query.after is not None:
            where.append("(d.created_at < ? OR (d.created_at = ? AND d.id < ?))")
            args.extend((query.after[0], query.after[0], query.after[1]))
        sql = f"SELECT {_DELIVERY_COLUMNS} FROM {_DELIVERY_FROM}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY d.created_at DESC, d.id DESC LIMIT ?"
        args.append(query.limit + 1)
        rows = await fetch_all(self._db.reader, sql, args)
        return page_of(rows, query.limit, _delivery)

    async def retry_delivery(self, delivery_id: str, at: float) -> bool:
        """One more attempt now, for a delivery that failed or is waiting; a failure fails it again."""
        return (
            await self._db.write(
                lambda db: changes.deliveries_due(
                    self._db.topics,
                    db.execute(
                        "UPDATE deliveries SET status = 'pending', next_attempt_at = ?, completed_at = NULL, "
                        "max_attempts = attempts + 1, updated_at = ? WHERE id = ? AND status != 'succeeded'",
                        (at, at, delivery_id),
                    ).rowcount,
                )
            )
            > 0
        )

    async def recover_deliveries(self, sub_id: str, since: float, at: float) -> int:
        """Replay a subscription's failed deliveries created since ``since``, each with one more attempt."""
        recovered: int = await self._db.write(
            lambda db: changes.deliveries_due(
                self._db.topics,
                db.execute(
                    "UPDATE deliveries SET status = 'pending', next_attempt_at = ?, completed_at = NULL, "
                    "max_attempts = attempts + 1, updated_at = ? "
                    "WHERE subscription_id = ? AND status = 'failed' AND created_at >= ?",
                    (at, at, sub_id, since),
                ).rowcount,
            )
        )
        return recovered
