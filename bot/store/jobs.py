"""The jobs table (queue, posting/posted, history, recovery) and each user's rate bucket and
default style; a job's columns are in :mod:`bot.store.job_rows`.

New jobs are group-committed: submits that arrive while a commit is in flight share the next
one, so durable enqueue is not limited to one fsync per job.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import aiosqlite

from bot.admission import Bucket
from bot.domain import Job, JobState
from bot.errors import StorageError
from bot.i18n import msg
from bot.store.connection import Database
from bot.store.job_rows import (
    JOB_COLUMNS,
    PLACEHOLDERS,
    job_from_row,
    job_row,
    timings_to_json,
)

log = logging.getLogger(__name__)

_INSERT_JOB = f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({PLACEHOLDERS})"  # noqa: S608 (constants)
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
        "safety_flagged",  # the safety check's verdict (issue 14): bot.store.job_rows
        "safety_score",
        "safety_policy",
        "text",
    }
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


class JobStore(Database):
    """Jobs, rate buckets and default styles over the one connection."""

    def __init__(self, db: aiosqlite.Connection, next_id: int) -> None:
        super().__init__(db)
        self._next_id = next_id
        self._pending: list[_PendingInsert] = []
        self._flusher: asyncio.Task[None] | None = None

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
                async with self.transaction(msg("core.op.queue_job")):
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
                what = msg("core.op.queue_job")
                failure = StorageError(
                    msg("core.storage_error", what=what, error=type(err).__name__)
                )
                failure.__cause__ = err
                _fail_waiters(batch, failure)
            except BaseException:  # cancelled: the waiters hear of it too, then it propagates
                _fail_waiters(batch, StorageError(msg("core.database_closing")))
                raise
            else:
                for p in batch:
                    if not p.done.done():
                        p.done.set_result(None)

    async def update_job(self, job_id: int, **fields: Any) -> None:
        assignments, values = _assignments(fields)
        sql = f"UPDATE jobs SET {assignments} WHERE id = ?"  # noqa: S608 (names whitelisted)
        await self.write_one(sql, [*values, job_id], msg("core.op.update_job", job=job_id))

    async def record_images(self, job_id: int, images: tuple[str, ...], **fields: Any) -> None:
        """The rows of a job's several images and its own update (``fields``, as for
        :meth:`update_job`), in one transaction: a row never names images it has not got."""
        assignments, values = _assignments(fields)
        async with self.transaction(msg("core.op.record_images", job=job_id)) as db:
            await db.execute("DELETE FROM job_images WHERE job_id = ?", (job_id,))
            await db.executemany(
                "INSERT INTO job_images (job_id, idx, path) VALUES (?, ?, ?)",
                [(job_id, k, path) for k, path in enumerate(images, start=1)],
            )
            sql = f"UPDATE jobs SET {assignments} WHERE id = ?"  # noqa: S608 (names whitelisted)
            await db.execute(sql, [*values, job_id])

    async def save_bucket(self, user_key: str, bucket: Bucket) -> None:
        async with self.transaction(msg("core.op.save_rate_limit")) as db:
            key = bucket_key(user_key)
            await db.execute(_UPSERT_BUCKET, (key, bucket.tokens, bucket.updated_at))

    async def set_default_style(self, user_key: str, style: str | None) -> None:
        async with self.transaction(msg("core.op.save_default_style")) as db:
            await db.execute(
                "INSERT INTO user_prefs (user_key, default_style) VALUES (?, ?) "
                "ON CONFLICT (user_key) DO UPDATE SET default_style = excluded.default_style",
                (user_key, style),
            )

    # --- reading -------------------------------------------------------------------------

    async def get_job(self, job_id: int) -> Job | None:
        rows = await self.query("SELECT * FROM jobs WHERE id = ?", (job_id,))
        jobs = await self.jobs_from_rows(rows)
        return jobs[0] if jobs else None

    async def is_deleted(self, job_id: int) -> bool:
        rows = await self.query("SELECT deleted_at FROM jobs WHERE id = ?", (job_id,))
        return bool(rows) and rows[0]["deleted_at"] is not None

    async def jobs_in_states(self, states: Iterable[JobState]) -> list[Job]:
        names = [str(s) for s in states]
        marks = ", ".join("?" * len(names))
        rows = await self.query(f"SELECT * FROM jobs WHERE state IN ({marks}) ORDER BY id", names)  # noqa: S608
        return await self.jobs_from_rows(rows)

    async def history(self, user_key: str, limit: int, offset: int) -> list[Job]:
        rows = await self.query(
            "SELECT * FROM jobs WHERE user_key = ? AND deleted_at IS NULL "
            "ORDER BY id DESC LIMIT ? OFFSET ?",
            (user_key, limit, offset),
        )
        return await self.jobs_from_rows(rows)

    async def server_history(self, server_key: str, limit: int, offset: int) -> list[Job]:
        rows = await self.query(
            "SELECT * FROM jobs WHERE server_key = ? AND deleted_at IS NULL "
            "ORDER BY id DESC LIMIT ? OFFSET ?",
            (server_key, limit, offset),
        )
        return await self.jobs_from_rows(rows)

    async def jobs_from_rows(self, rows: list[sqlite3.Row]) -> list[Job]:
        """Jobs from ``jobs`` rows, each with its images (one more read, only for n > 1)."""
        jobs = [job_from_row(r) for r in rows]
        several = [j.id for j in jobs if j.spec.n > 1]
        if not several:
            return jobs
        marks = ", ".join("?" * len(several))
        found = await self.query(
            f"SELECT job_id, path FROM job_images WHERE job_id IN ({marks}) ORDER BY job_id, idx",  # noqa: S608
            several,
        )
        images: dict[int, list[str]] = {}
        for r in found:
            images.setdefault(r["job_id"], []).append(r["path"])
        return [replace(j, images=tuple(images.get(j.id, ()))) for j in jobs]

    async def parent_ids(self, job_id: int, limit: int) -> list[int]:
        """``job_id``'s ancestors, nearest first (at most ``limit``): one recursive read."""
        rows = await self.query(
            "WITH RECURSIVE chain(id, parent, depth) AS ("
            " SELECT id, parent_job_id, 0 FROM jobs WHERE id = ?"
            " UNION ALL SELECT j.id, j.parent_job_id, c.depth + 1 FROM jobs AS j"
            " JOIN chain AS c ON j.id = c.parent WHERE c.depth < ?)"
            " SELECT id FROM chain WHERE depth > 0 ORDER BY depth",
            (job_id, limit),
        )
        return [r["id"] for r in rows]

    async def file_ref(self, job_id: int) -> str | None:
        rows = await self.query("SELECT file_ref FROM jobs WHERE id = ?", (job_id,))
        return rows[0]["file_ref"] if rows else None

    async def bucket(self, user_key: str) -> Bucket | None:
        rows = await self.query(
            "SELECT tokens, updated_at FROM rate_buckets WHERE user_key = ?",
            (bucket_key(user_key),),
        )
        return Bucket(rows[0]["tokens"], rows[0]["updated_at"]) if rows else None

    async def user_state(self, user_key: str) -> tuple[Bucket | None, str | None]:
        """A user's rate bucket and default style in one read (the submit path needs both)."""
        rows = await self.query(
            "SELECT b.tokens, b.updated_at, p.default_style FROM (SELECT ? AS k, ? AS h) AS u "
            "LEFT JOIN rate_buckets AS b ON b.user_key = u.h "
            "LEFT JOIN user_prefs AS p ON p.user_key = u.k",
            (user_key, bucket_key(user_key)),
        )
        row = rows[0]
        bucket = None if row["tokens"] is None else Bucket(row["tokens"], row["updated_at"])
        return bucket, row["default_style"]

    async def default_style(self, user_key: str) -> str | None:
        rows = await self.query(
            "SELECT default_style FROM user_prefs WHERE user_key = ?", (user_key,)
        )
        return rows[0]["default_style"] if rows else None

    async def max_job_id(self) -> int:
        rows = await self.query("SELECT coalesce(max(id), 0) AS top FROM jobs")
        return int(rows[0]["top"])

    def start_ids_after(self, last: int) -> None:
        """Called once on opening: new ids continue after the highest stored one."""
        self._next_id = last + 1

    async def close(self) -> None:
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await self._flusher
        await super().close()
