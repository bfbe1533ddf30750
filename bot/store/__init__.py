"""Durable state in SQLite: every SQL statement of the bot lives in this package.

- :mod:`bot.store.connection`: opening, durability settings, migrations, the writer lock.
- :mod:`bot.store.jobs`: jobs (queue, posting, history), rate buckets, default styles;
  :mod:`bot.store.job_rows`: a job as a row and back.
- :mod:`bot.store.servers`: server settings, blocks, the audit log, privacy choices.
- :mod:`bot.store.community`: shares, votes, the gallery, forgetting a user.

:class:`Store` is all of it over one connection: the job methods directly, the others as
``store.servers`` and ``store.community``. Open it with :func:`open_store`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite

from bot.store.community import CommunityTables, Forgotten, NewShare, ShareRow
from bot.store.connection import (
    MIGRATIONS_DIR,
    Database,
    connect,
    migrate,
    migrations,
    open_migrated,
    storage_error,
)
from bot.store.job_rows import job_from_row, job_row, verdict_columns
from bot.store.jobs import JobStore, bucket_key
from bot.store.servers import AuditNote, ServerTables

__all__ = [
    "MIGRATIONS_DIR",
    "AuditNote",
    "CommunityTables",
    "Database",
    "Forgotten",
    "NewShare",
    "ServerTables",
    "ShareRow",
    "Store",
    "bucket_key",
    "connect",
    "job_from_row",
    "job_row",
    "migrate",
    "migrations",
    "open_store",
    "storage_error",
    "verdict_columns",
]


class Store(JobStore):
    """All database access over one connection. Construct with :func:`open_store`."""

    def __init__(self, db: aiosqlite.Connection, next_id: int) -> None:
        super().__init__(db, next_id)
        self.servers = ServerTables(self)
        self.community = CommunityTables(self)


@contextlib.asynccontextmanager
async def open_store(path: Path, *, busy_timeout_ms: int = 5000) -> AsyncIterator[Store]:
    """Open (creating and migrating) the database at ``path``; close it on exit."""
    db = await open_migrated(path, busy_timeout_ms=busy_timeout_ms)
    store = Store(db, next_id=1)
    try:
        store.start_ids_after(await store.max_job_id())
    except BaseException:
        await store.close()
        raise
    try:
        yield store
    finally:
        await store.close()
