"""The ``Store`` on SQLite: a package of small parts, composed by the ``SqliteStore`` facade.

Each part holds one concern's queries and receives what it needs when it is built:

- ``db``: the file: its connection pair, the single writer (``Database.write``), the notifier topics
  of a transaction, migrations on open; ``lock``: the process lock on the file.
- ``rows``: the column lists, row decoders and SQL fragments the parts read alike.
- ``changes``: writes several parts make inside their own transactions (a timeline entry, claims,
  what a finished task frees), each written once.
- ``events``: the outbox: the event each change of state writes, its deliveries, the event feed.
- ``tasks``: creating tasks, reading them and their history, summaries and gauges.
- ``submission``: the submitter's claims, the Run mark, what a Run came to.
- ``callbacks``: Wiro's callbacks, kept in group commits.
- ``looks``: looks at Wiro and their results, deadlines, the terminal changes the relay decides.
- ``subscriptions`` and ``deliveries``: the webhook fan-out's subscribers, deliveries and attempts.
- ``store``: ``SqliteStore``, the facade.

Callbacks have a part of their own, apart from the looks they make due: the group commit is a
mechanism with state of its own (a queue, the task that writes it), and the store waits for it
before it closes. Subscriptions and deliveries are two parts for size: each stands alone, and the
deliveries a change makes are the outbox's, written in that change's transaction.
"""

from service.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
