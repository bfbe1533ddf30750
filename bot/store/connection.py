"""The one SQLite connection: durability settings, migrations, the writer lock, transactions.

One writer connection (aiosqlite), WAL, ``synchronous=FULL`` (NORMAL may lose a committed
transaction on power loss), ``BEGIN IMMEDIATE`` so a write never fails half-way on a lock
upgrade. Errors of the database or the disk become :class:`bot.errors.StorageError`, naming the
operation (a catalogue :class:`bot.i18n.Message`) so a user reads it in their language.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib.resources
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import aiosqlite

from bot.errors import StorageError
from bot.i18n import Message, msg

# The ``migrations`` package ships the .sql files as package data (an installed wheel has them).
MIGRATIONS_DIR = Path(str(importlib.resources.files("migrations")))
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def storage_error(err: BaseException, what: Message) -> StorageError:
    """A clear message for the operator (and the user) from a low-level error; ``what`` names
    the operation that failed (a ``core.op.*`` message)."""
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return StorageError(msg("core.disk_full", what=what))
    text = str(err)
    if "locked" in text or "busy" in text:
        return StorageError(msg("core.database_busy", what=what))
    if "full" in text:
        return StorageError(msg("core.disk_full", what=what))
    return StorageError(msg("core.storage_error", what=what, error=text))


def migrations(directory: Path = MIGRATIONS_DIR) -> list[tuple[int, str]]:
    """``(version, sql)`` in order; versions must be 1, 2, 3 ... without gaps."""
    found = []
    for path in directory.iterdir():
        match = _MIGRATION_NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path.read_text(encoding="utf-8")))
    found.sort()
    if [v for v, _ in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(
            f"Migrations in {directory} must be numbered 0001, 0002, ... without gaps"
        )
    return found


async def migrate(
    db: aiosqlite.Connection, upto: int | None = None, directory: Path = MIGRATIONS_DIR
) -> int:
    """Apply every migration newer than ``PRAGMA user_version``, each in one transaction."""
    async with db.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    current = int(row[0]) if row else 0
    known = migrations(directory)
    if current > len(known):
        # Written by a newer turbobot: this code would misread (or damage) what it cannot see.
        raise StorageError(msg("core.schema_too_new", version=current, known=len(known)))
    for version, sql in known:
        if version <= current or (upto is not None and version > upto):
            continue
        # executescript commits first and then runs the text as is, so the transaction and the
        # version bump live inside the script: a failing statement rolls all of it back.
        try:
            await db.executescript(
                f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;"
            )
        except sqlite3.Error:
            if db.in_transaction:
                await db.rollback()
            raise
        current = version
    return current


async def connect(path: Path, *, busy_timeout_ms: int = 5000) -> aiosqlite.Connection:
    """A connection with the durability settings; autocommit, transactions are explicit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = await aiosqlite.connect(path, isolation_level=None)
    db.row_factory = sqlite3.Row
    try:
        await db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA synchronous = FULL")
        await db.execute("PRAGMA foreign_keys = ON")
        # Deleted rows are overwritten with zeros, so /forget leaves no readable trace.
        await db.execute("PRAGMA secure_delete = ON")
    except BaseException:
        # A file that is not a database fails here: close, or its thread keeps the process alive.
        await db.close()
        raise
    return db


async def open_migrated(path: Path, *, busy_timeout_ms: int = 5000) -> aiosqlite.Connection:
    """:func:`connect` and :func:`migrate`; errors name the step and the file."""
    try:
        db = await connect(path, busy_timeout_ms=busy_timeout_ms)
    except (sqlite3.Error, OSError) as err:
        raise storage_error(err, msg("core.op.open_db", path=str(path))) from err
    try:
        await migrate(db)
    except sqlite3.Error as err:
        await db.close()
        raise storage_error(err, msg("core.op.upgrade_db", path=str(path))) from err
    except BaseException:
        await db.close()
        raise
    return db


class Database:
    """The connection with its one-writer lock: every statement of the store goes through here."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def transaction(self, what: Message) -> AsyncIterator[aiosqlite.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` under the one-writer lock; errors → StorageError."""
        async with self._lock:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as err:
                raise storage_error(err, what) from err
            try:
                yield self._db
                await self._db.execute("COMMIT")
            except BaseException as err:
                with contextlib.suppress(sqlite3.Error):
                    await self._db.execute("ROLLBACK")
                if isinstance(err, sqlite3.Error):
                    raise storage_error(err, what) from err
                raise

    async def write_one(self, sql: str, params: list[Any], what: Message) -> None:
        """One statement in autocommit mode: its own transaction, one trip to the DB thread.

        Under the writer lock, so it never lands inside a group commit's open transaction.
        A single write statement takes the write lock directly (no read-then-upgrade).
        """
        async with self._lock:
            try:
                await self._db.execute(sql, params)
            except sqlite3.Error as err:
                raise storage_error(err, what) from err

    async def query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        """Rows of one read; errors become StorageError."""
        try:
            async with self._db.execute(sql, tuple(params)) as cur:
                return list(await cur.fetchall())
        except sqlite3.Error as err:
            raise storage_error(err, msg("core.op.read_db")) from err

    async def checkpoint(self) -> None:
        """Copy the WAL into the database file and truncate it (after ``/forget``: with
        ``secure_delete`` the old pages are zeroed, and no copy of them remains in the WAL)."""
        async with self._lock:
            try:
                await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as err:
                raise storage_error(err, msg("core.op.checkpoint")) from err

    async def close(self) -> None:
        await self._db.close()
