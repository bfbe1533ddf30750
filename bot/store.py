"""Durable state in SQLite (jobs, rate buckets, preferences) and images on disk.

One writer connection (aiosqlite), WAL, ``synchronous=FULL`` (NORMAL may lose a committed
transaction on power loss), ``BEGIN IMMEDIATE`` so a write never fails half-way on a lock
upgrade. New jobs are group-committed: submits that arrive while a commit is in flight share
the next one, so durable enqueue is not limited to one fsync per job. Errors of the database
or the disk become :class:`bot.errors.StorageError` with a message an operator can act on.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import importlib.resources
import json
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import aiosqlite

from bot.admission import Bucket
from bot.domain import GenerationSpec, Job, JobKind, JobState, Platform, Requester, Timings
from bot.errors import StorageError
from bot.i18n import msg

# The ``migrations`` package ships the .sql files as package data (an installed wheel has them).
MIGRATIONS_DIR = Path(str(importlib.resources.files("migrations")))
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

log = logging.getLogger(__name__)


def storage_error(err: BaseException, what: str) -> StorageError:
    """A clear message for the operator (and the user) from a low-level error."""
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


_JOB_COLUMNS = (
    "id, platform, user_id, display_name, channel_id, server_id, reply_to, user_key, server_key, "
    "prompt, style, seed, steps, width, height, cfg, negative_prompt, state, attempts, created_at, "
    "started_at, finished_at, image_path, timings, error, posted_message_id, parent_job_id, "
    "posted_channel_id, file_ref, deleted_at, details_hidden, n, kind, init_image, strength"
)
_PLACEHOLDERS = ", ".join("?" * len(_JOB_COLUMNS.split(",")))
_INSERT_JOB = f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({_PLACEHOLDERS})"  # noqa: S608 (constants)
_UPSERT_BUCKET = (
    "INSERT INTO rate_buckets (user_key, tokens, updated_at) VALUES (?, ?, ?) "
    "ON CONFLICT (user_key) DO UPDATE SET "
    "tokens = excluded.tokens, updated_at = excluded.updated_at"
)
# Columns a state change may set (names are spliced into SQL, so only these are accepted).
_UPDATABLE = frozenset(
    {
        "state",
        "attempts",
        "started_at",
        "finished_at",
        "image_path",
        "timings",
        "error",
        "posted_message_id",
        "posted_channel_id",
        "file_ref",
        "deleted_at",
        "prompt",
        "negative_prompt",
    }
)


def timings_to_json(timings: Timings | None) -> str | None:
    return None if timings is None else json.dumps(asdict(timings))


def timings_from_json(text: str | None) -> Timings | None:
    if text is None:
        return None
    data = json.loads(text)
    data["step_ms"] = tuple(data.get("step_ms", ()))
    return Timings(**data)


def job_row(job: Job) -> tuple[Any, ...]:
    r, s = job.requester, job.spec
    return (
        job.id,
        str(r.platform),
        r.user_id,
        r.display_name,
        r.channel_id,
        r.server_id,
        r.reply_to,
        r.user_key,
        r.server_key,
        s.prompt,
        s.style,
        s.seed,
        s.steps,
        s.width,
        s.height,
        s.cfg,
        s.negative_prompt,
        str(job.state),
        job.attempts,
        job.created_at,
        job.started_at,
        job.finished_at,
        job.image_path,
        timings_to_json(job.timings),
        job.error,
        job.posted_message_id,
        job.parent_job_id,
        None,  # posted_channel_id
        job.posted_file_ref,
        None,  # deleted_at
        int(job.details_hidden),
        s.n,
        str(s.kind),
        s.init_image,
        s.strength,
    )


def job_from_row(row: sqlite3.Row) -> Job:
    requester = Requester(
        platform=Platform(row["platform"]),
        user_id=row["user_id"],
        display_name=row["display_name"],
        channel_id=row["channel_id"],
        server_id=row["server_id"],
        reply_to=row["reply_to"],
    )
    spec = GenerationSpec(
        prompt=row["prompt"],
        style=row["style"],
        seed=row["seed"],
        steps=row["steps"],
        width=row["width"],
        height=row["height"],
        cfg=row["cfg"],
        negative_prompt=row["negative_prompt"],
        n=row["n"],
        kind=JobKind(row["kind"]),
        init_image=row["init_image"],
        strength=row["strength"],
    )
    return Job(
        id=row["id"],
        requester=requester,
        spec=spec,
        state=JobState(row["state"]),
        created_at=row["created_at"],
        attempts=row["attempts"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        image_path=row["image_path"],
        timings=timings_from_json(row["timings"]),
        error=row["error"],
        posted_message_id=row["posted_message_id"],
        parent_job_id=row["parent_job_id"],
        posted_file_ref=row["file_ref"],
        details_hidden=bool(row["details_hidden"]),
    )


def _assignments(fields: dict[str, Any]) -> tuple[str, list[Any]]:
    """``a = ?, b = ?`` and the values, for whitelisted columns only."""
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    values = [str(v) if isinstance(v, JobState) else v for v in fields.values()]
    if "timings" in fields:
        values[list(fields).index("timings")] = timings_to_json(fields["timings"])
    return ", ".join(f"{name} = ?" for name in fields), values


@dataclass(slots=True)
class _PendingInsert:
    job: Job
    bucket_key: str | None
    bucket: Bucket | None
    done: asyncio.Future[None]


def bucket_key(user_key: str) -> str:
    """How a rate bucket is keyed: a digest, not the readable user key. So ``/forget`` can
    keep the bucket (forgetting must not reset the rate limit) while no id of the user stays."""
    return "sha256:" + hashlib.sha256(user_key.encode()).hexdigest()


def _fail_waiters(batch: list[_PendingInsert], err: StorageError) -> None:
    for p in batch:
        if not p.done.done():
            p.done.set_exception(err)


class Store:
    """All database access. Construct with :func:`open_store`."""

    def __init__(self, db: aiosqlite.Connection, next_id: int) -> None:
        self._db = db
        self._next_id = next_id
        self._pending: list[_PendingInsert] = []
        self._flusher: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # --- writing -------------------------------------------------------------------------

    def next_job_id(self) -> int:
        """Ids come from here, not from SQLite, so a group commit needs no round trip per row.

        Safe because this process is the only writer; an id burnt by a failed commit is a gap.
        """
        job_id = self._next_id
        self._next_id += 1
        return job_id

    async def add_job(
        self, job: Job, bucket_key: str | None = None, bucket: Bucket | None = None
    ) -> None:
        """Insert a job (and the user's rate bucket) durably; returns after the commit."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_PendingInsert(job, bucket_key, bucket, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await asyncio.shield(done)

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                async with self.transaction("queue the job"):
                    await self._db.executemany(_INSERT_JOB, [job_row(p.job) for p in batch])
                    buckets = [
                        (bucket_key(p.bucket_key), p.bucket.tokens, p.bucket.updated_at)
                        for p in batch
                        if p.bucket_key is not None and p.bucket is not None
                    ]
                    if buckets:
                        await self._db.executemany(_UPSERT_BUCKET, buckets)
            except StorageError as err:
                _fail_waiters(batch, err)
            except Exception as err:
                # Anything else (a value SQLite cannot bind, a bug) must not kill this task with
                # its waiters unresolved: every submit in the batch would hang, holding its slot.
                log.exception("group commit failed")
                failure = StorageError(
                    f"Storage error: could not queue the job ({type(err).__name__})."
                )
                failure.__cause__ = err
                _fail_waiters(batch, failure)
            except BaseException:  # cancelled: the waiters hear of it too, then it propagates
                _fail_waiters(batch, StorageError("Storage error: the database is closing."))
                raise
            else:
                for p in batch:
                    if not p.done.done():
                        p.done.set_result(None)

    @contextlib.asynccontextmanager
    async def transaction(self, what: str) -> AsyncIterator[aiosqlite.Connection]:
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

    async def update_job(self, job_id: int, **fields: Any) -> None:
        assignments, values = _assignments(fields)
        sql = f"UPDATE jobs SET {assignments} WHERE id = ?"  # noqa: S608 (names whitelisted)
        await self.write_one(sql, [*values, job_id], f"update job #{job_id}")

    async def write_one(self, sql: str, params: list[Any], what: str) -> None:
        """One statement in autocommit mode: its own transaction, one trip to the DB thread.

        Under the writer lock, so it never lands inside a group commit's open transaction.
        A single write statement takes the write lock directly (no read-then-upgrade).
        """
        async with self._lock:
            try:
                await self._db.execute(sql, params)
            except sqlite3.Error as err:
                raise storage_error(err, what) from err

    async def save_bucket(self, user_key: str, bucket: Bucket) -> None:
        async with self.transaction("save a rate limit") as db:
            key = bucket_key(user_key)
            await db.execute(_UPSERT_BUCKET, (key, bucket.tokens, bucket.updated_at))

    async def set_default_style(self, user_key: str, style: str | None) -> None:
        async with self.transaction("save your default style") as db:
            await db.execute(
                "INSERT INTO user_prefs (user_key, default_style) VALUES (?, ?) "
                "ON CONFLICT (user_key) DO UPDATE SET default_style = excluded.default_style",
                (user_key, style),
            )

    # --- reading -------------------------------------------------------------------------

    async def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        try:
            async with self._db.execute(sql, tuple(params)) as cur:
                return list(await cur.fetchall())
        except sqlite3.Error as err:
            raise storage_error(err, "read the database") from err

    async def query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        """Rows of one read (for :mod:`bot.community`); errors become StorageError."""
        return await self._rows(sql, params)

    async def checkpoint(self) -> None:
        """Copy the WAL into the database file and truncate it (after ``/forget``: with
        ``secure_delete`` the old pages are zeroed, and no copy of them remains in the WAL)."""
        async with self._lock:
            try:
                await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as err:
                raise storage_error(err, "checkpoint the database") from err

    async def get_job(self, job_id: int) -> Job | None:
        rows = await self._rows("SELECT * FROM jobs WHERE id = ?", (job_id,))
        jobs = await self.jobs_from_rows(rows)
        return jobs[0] if jobs else None

    async def is_deleted(self, job_id: int) -> bool:
        rows = await self._rows("SELECT deleted_at FROM jobs WHERE id = ?", (job_id,))
        return bool(rows) and rows[0]["deleted_at"] is not None

    async def jobs_in_states(self, states: Iterable[JobState]) -> list[Job]:
        names = [str(s) for s in states]
        marks = ", ".join("?" * len(names))
        rows = await self._rows(f"SELECT * FROM jobs WHERE state IN ({marks}) ORDER BY id", names)  # noqa: S608
        return await self.jobs_from_rows(rows)

    async def history(self, user_key: str, limit: int, offset: int) -> list[Job]:
        rows = await self._rows(
            "SELECT * FROM jobs WHERE user_key = ? AND deleted_at IS NULL "
            "ORDER BY id DESC LIMIT ? OFFSET ?",
            (user_key, limit, offset),
        )
        return await self.jobs_from_rows(rows)

    async def server_history(self, server_key: str, limit: int, offset: int) -> list[Job]:
        rows = await self._rows(
            "SELECT * FROM jobs WHERE server_key = ? AND deleted_at IS NULL "
            "ORDER BY id DESC LIMIT ? OFFSET ?",
            (server_key, limit, offset),
        )
        return await self.jobs_from_rows(rows)

    # --- iteration (issue 13): a job's several images, its parent chain --------------------

    async def jobs_from_rows(self, rows: list[sqlite3.Row]) -> list[Job]:
        """Jobs from ``jobs`` rows, each with its images (one more read, only for n > 1)."""
        jobs = [job_from_row(r) for r in rows]
        several = [j.id for j in jobs if j.spec.n > 1]
        if not several:
            return jobs
        marks = ", ".join("?" * len(several))
        found = await self._rows(
            f"SELECT job_id, path FROM job_images WHERE job_id IN ({marks}) ORDER BY job_id, idx",  # noqa: S608
            several,
        )
        images: dict[int, list[str]] = {}
        for r in found:
            images.setdefault(r["job_id"], []).append(r["path"])
        return [replace(j, images=tuple(images.get(j.id, ()))) for j in jobs]

    async def record_images(self, job_id: int, images: tuple[str, ...], **fields: Any) -> None:
        """The rows of a job's several images and its own update (``fields``, as for
        :meth:`update_job`), in one transaction: a row never names images it has not got."""
        assignments, values = _assignments(fields)
        async with self.transaction(f"record the images of job #{job_id}") as db:
            await db.execute("DELETE FROM job_images WHERE job_id = ?", (job_id,))
            await db.executemany(
                "INSERT INTO job_images (job_id, idx, path) VALUES (?, ?, ?)",
                [(job_id, k, path) for k, path in enumerate(images, start=1)],
            )
            sql = f"UPDATE jobs SET {assignments} WHERE id = ?"  # noqa: S608 (names whitelisted)
            await db.execute(sql, [*values, job_id])

    async def parent_ids(self, job_id: int, limit: int) -> list[int]:
        """``job_id``'s ancestors, nearest first (at most ``limit``): one recursive read."""
        rows = await self._rows(
            "WITH RECURSIVE chain(id, parent, depth) AS ("
            " SELECT id, parent_job_id, 0 FROM jobs WHERE id = ?"
            " UNION ALL SELECT j.id, j.parent_job_id, c.depth + 1 FROM jobs AS j"
            " JOIN chain AS c ON j.id = c.parent WHERE c.depth < ?)"
            " SELECT id FROM chain WHERE depth > 0 ORDER BY depth",
            (job_id, limit),
        )
        return [r["id"] for r in rows]

    async def file_ref(self, job_id: int) -> str | None:
        rows = await self._rows("SELECT file_ref FROM jobs WHERE id = ?", (job_id,))
        return rows[0]["file_ref"] if rows else None

    async def bucket(self, user_key: str) -> Bucket | None:
        rows = await self._rows(
            "SELECT tokens, updated_at FROM rate_buckets WHERE user_key = ?",
            (bucket_key(user_key),),
        )
        return Bucket(rows[0]["tokens"], rows[0]["updated_at"]) if rows else None

    async def user_state(self, user_key: str) -> tuple[Bucket | None, str | None]:
        """A user's rate bucket and default style in one read (the submit path needs both)."""
        rows = await self._rows(
            "SELECT b.tokens, b.updated_at, p.default_style FROM (SELECT ? AS k, ? AS h) AS u "
            "LEFT JOIN rate_buckets AS b ON b.user_key = u.h "
            "LEFT JOIN user_prefs AS p ON p.user_key = u.k",
            (user_key, bucket_key(user_key)),
        )
        row = rows[0]
        bucket = None if row["tokens"] is None else Bucket(row["tokens"], row["updated_at"])
        return bucket, row["default_style"]

    async def default_style(self, user_key: str) -> str | None:
        rows = await self._rows(
            "SELECT default_style FROM user_prefs WHERE user_key = ?", (user_key,)
        )
        return rows[0]["default_style"] if rows else None

    async def close(self) -> None:
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await self._flusher
        await self._db.close()


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


@contextlib.asynccontextmanager
async def open_store(path: Path, *, busy_timeout_ms: int = 5000) -> AsyncIterator[Store]:
    """Open (creating and migrating) the database at ``path``; close it on exit."""
    try:
        db = await connect(path, busy_timeout_ms=busy_timeout_ms)
    except (sqlite3.Error, OSError) as err:
        raise storage_error(err, f"open the database {path}") from err
    try:
        try:
            await migrate(db)
            async with db.execute("SELECT coalesce(max(id), 0) FROM jobs") as cur:
                row = await cur.fetchone()
        except sqlite3.Error as err:
            raise storage_error(err, f"upgrade the database {path}") from err
        store = Store(db, next_id=int(row[0]) + 1 if row else 1)
    except BaseException:
        await db.close()
        raise
    try:
        yield store
    finally:
        await store.close()
