"""Community tables: shares (showcase posts), votes, the gallery, and forgetting a user.

Which share is visible, who may vote and what ``/forget`` must remove are decided in
:mod:`bot.community`; this module holds the statements that carry those decisions out.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

import aiosqlite

from bot.domain import GalleryItem, JobState, Platform
from bot.i18n import msg
from bot.store.connection import Database
from bot.store.job_rows import job_from_row
from bot.store.servers import showcase_posts

# A share is visible while its job is not deleted and its owner has not opted out.
_VISIBLE_SHARES = (
    "FROM shares AS s JOIN jobs AS j ON j.id = s.job_id "
    "LEFT JOIN user_privacy AS p ON p.user_key = s.user_key "
    "WHERE j.deleted_at IS NULL AND coalesce(p.share_opt_out, 0) = 0"
)
_SCORE = "coalesce((SELECT sum(v.value) FROM votes AS v WHERE v.share_id = s.id), 0)"
_GALLERY = (
    "SELECT j.*, s.id AS share_id, s.shared_at, s.message_id AS share_message_id, "
    f"coalesce(p.hide_details, 0) AS hide_details, {_SCORE} AS score "
    f"{_VISIBLE_SHARES} AND s.server_key = ? AND s.shared_at >= ? "
)
# Only finished jobs are forgotten (the caller made sure none is in flight).
_FINAL_STATES = (str(JobState.POSTED), str(JobState.FAILED), str(JobState.CANCELLED))
_MINE = f"SELECT id FROM jobs WHERE user_key = ? AND state IN ({', '.join('?' * 3)})"  # noqa: S608


@dataclass(frozen=True, slots=True)
class ShareRow:
    share_id: int
    channel_id: str
    message_id: str | None


@dataclass(frozen=True, slots=True)
class NewShare:
    job_id: int
    platform: Platform
    server_key: str
    user_key: str
    channel_id: str
    at: float


@dataclass(frozen=True, slots=True)
class Forgotten:
    """What ``/forget`` removed from the database, and what is left to remove elsewhere."""

    jobs: int
    image_paths: list[str]
    posts: list[tuple[str, str]]  # (channel, message) to delete from the platform


class CommunityTables:
    """Shares, votes and the gallery; forgetting a user across every table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add_share(self, share: NewShare) -> ShareRow:
        """The job's share row (a new one, or the one it already has)."""
        async with self._db.transaction(msg("core.op.share")) as db:
            await db.execute(
                "INSERT INTO shares (job_id, platform, server_key, user_key, channel_id, "
                "shared_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (job_id) DO NOTHING",
                (
                    share.job_id,
                    str(share.platform),
                    share.server_key,
                    share.user_key,
                    share.channel_id,
                    share.at,
                ),
            )
            async with db.execute(
                "SELECT id, channel_id, message_id FROM shares WHERE job_id = ?", (share.job_id,)
            ) as cur:
                row = await cur.fetchone()
        assert row is not None  # noqa: S101 (inserted or found just above)
        return ShareRow(row["id"], row["channel_id"], row["message_id"])

    async def visible_share_channel(self, job_id: int) -> str | None:
        rows = await self._db.query(
            f"SELECT s.channel_id {_VISIBLE_SHARES} AND s.job_id = ?",
            (job_id,),
        )
        return str(rows[0]["channel_id"]) if rows else None

    async def share_exists(self, share_id: int) -> bool:
        return bool(await self._db.query("SELECT id FROM shares WHERE id = ?", (share_id,)))

    async def set_share_message(self, share_id: int, message_id: str) -> None:
        await self._db.write_one(
            "UPDATE shares SET message_id = ? WHERE id = ?",
            [message_id, share_id],
            msg("core.op.record_showcase_post"),
        )

    async def share_by_message(self, platform: Platform, message_id: str) -> int | None:
        rows = await self._db.query(
            "SELECT id FROM shares WHERE platform = ? AND message_id = ?",
            (str(platform), message_id),
        )
        return int(rows[0]["id"]) if rows else None

    async def visible_share_owner(self, share_id: int) -> tuple[str, Platform] | None:
        """(owner's user key, platform) of a visible share."""
        rows = await self._db.query(
            f"SELECT s.user_key, s.platform {_VISIBLE_SHARES} AND s.id = ?",
            (share_id,),
        )
        return (rows[0]["user_key"], Platform(rows[0]["platform"])) if rows else None

    async def set_vote(self, share_id: int, voter_key: str, value: int, at: float) -> None:
        """``value`` -1 or 1; 0 takes the vote back."""
        if value == 0:
            sql = "DELETE FROM votes WHERE share_id = ? AND voter_key = ?"
            params: list[Any] = [share_id, voter_key]
        else:
            sql = "INSERT OR REPLACE INTO votes VALUES (?, ?, ?, ?)"
            params = [share_id, voter_key, value, at]
        await self._db.write_one(sql, params, msg("core.op.record_vote"))

    async def score(self, share_id: int) -> int:
        rows = await self._db.query(
            "SELECT coalesce(sum(value), 0) AS score FROM votes WHERE share_id = ?", (share_id,)
        )
        return int(rows[0]["score"])

    async def vote_of(self, share_id: int, voter_key: str) -> int:
        rows = await self._db.query(
            "SELECT value FROM votes WHERE share_id = ? AND voter_key = ?",
            (share_id, voter_key),
        )
        return int(rows[0]["value"]) if rows else 0

    async def gallery(
        self, server_key: str, since: float, *, by_score: bool, limit: int, offset: int
    ) -> list[GalleryItem]:
        order = "score DESC, " if by_score else ""
        rows = await self._db.query(
            f"{_GALLERY} ORDER BY {order}s.shared_at DESC, s.id DESC LIMIT ? OFFSET ?",
            (server_key, since, limit, offset),
        )
        return [_gallery_item(r) for r in rows]

    async def forget_user(
        self, platform: Platform, user_key: str, user_id: str, forgotten: str
    ) -> Forgotten:
        """Delete every row of this user (finished jobs only); other users' remixes lose the
        link to the forgotten original and the prompt they copied from it; audit entries keep
        the action and name the user ``forgotten``. Rate buckets stay: they are kept under a
        digest of the user's key, not the key (see ``bot.store.jobs.bucket_key``)."""
        params = (user_key, *_FINAL_STATES)
        async with self._db.transaction(msg("core.op.forget")) as db:
            async with db.execute(
                f"SELECT image_path FROM jobs WHERE id IN ({_MINE})",  # noqa: S608
                params,
            ) as cur:
                paths = [r["image_path"] for r in await cur.fetchall() if r["image_path"]]
            paths += await _iteration_files(db, params)
            posts = await showcase_posts(db, user_key)
            posts += await _result_posts(db, params)
            await _drop_copied_prompts(db, params, user_key)
            await db.execute(
                f"UPDATE jobs SET parent_job_id = NULL WHERE parent_job_id IN ({_MINE})",  # noqa: S608
                params,
            )
            await db.execute("DELETE FROM votes WHERE voter_key = ?", (user_key,))
            await db.execute("DELETE FROM shares WHERE user_key = ?", (user_key,))
            cur = await db.execute(f"DELETE FROM jobs WHERE id IN ({_MINE})", params)  # noqa: S608
            count = cur.rowcount
            # rate_buckets: only a row of an older version, keyed by the readable user key.
            for table in ("rate_buckets", "user_prefs", "user_privacy"):
                await db.execute(f"DELETE FROM {table} WHERE user_key = ?", (user_key,))  # noqa: S608
            await _forget_in_audit(db, platform, user_id, forgotten)
        await self._db.checkpoint()
        return Forgotten(count, paths, posts)


async def _forget_in_audit(
    db: aiosqlite.Connection, platform: Platform, user_id: str, forgotten: str
) -> None:
    servers = f"{platform}:%"
    await db.execute(
        "UPDATE audit_log SET actor_user_id = ? WHERE actor_user_id = ? AND server_key LIKE ?",
        (forgotten, user_id, servers),
    )
    # Targets end in "user <id>"; keep what was done, drop who it was done to.
    suffix = f"user {user_id}"
    await db.execute(
        "UPDATE audit_log SET target = substr(target, 1, length(target) - length(?)) || ? "
        "WHERE server_key LIKE ? AND (target = ? OR substr(target, -length(?) - 1) = ?)",
        (suffix, forgotten, servers, suffix, suffix, f" {suffix}"),
    )


async def _iteration_files(db: aiosqlite.Connection, params: tuple[str, ...]) -> list[str]:
    """The several images of the user's jobs, and the input images they uploaded that no
    other user's job uses (an upload is stored once per picture: bot.image_files)."""
    async with db.execute(
        f"SELECT path FROM job_images WHERE job_id IN ({_MINE})",  # noqa: S608
        params,
    ) as cur:
        paths = [r["path"] for r in await cur.fetchall()]
    async with db.execute(
        f"SELECT DISTINCT init_image FROM jobs WHERE id IN ({_MINE})"  # noqa: S608
        " AND init_image LIKE 'inputs/%' AND init_image NOT IN (SELECT init_image FROM jobs"
        f" WHERE init_image IS NOT NULL AND id NOT IN ({_MINE}))",
        (*params, *params),
    ) as cur:
        paths += [r["init_image"] for r in await cur.fetchall()]
    return paths


async def _result_posts(db: aiosqlite.Connection, params: tuple[str, ...]) -> list[tuple[str, str]]:
    """(channel, message) of the results posted for the jobs ``_MINE`` selects."""
    where = "posted_message_id IS NOT NULL AND posted_channel_id IS NOT NULL"
    sql = f"SELECT posted_channel_id, posted_message_id FROM jobs WHERE {where} AND id IN ({_MINE})"  # noqa: S608
    async with db.execute(sql, params) as cur:
        return [(r["posted_channel_id"], r["posted_message_id"]) for r in await cur.fetchall()]


async def _drop_copied_prompts(
    db: aiosqlite.Connection, params: tuple[str, ...], user_key: str
) -> None:
    """Other users' finished jobs made from these (and from those, and so on) keep their image
    but lose the prompt they copied: it was the forgotten user's words."""
    final = ", ".join("?" * len(_FINAL_STATES))
    sql = (
        f"WITH RECURSIVE copied(id) AS ({_MINE} UNION "  # noqa: S608 (constants)
        "SELECT j.id FROM jobs AS j JOIN copied AS c ON j.parent_job_id = c.id) "
        "UPDATE jobs SET prompt = '', negative_prompt = NULL "
        f"WHERE id IN (SELECT id FROM copied) AND user_key != ? AND state IN ({final})"
    )
    await db.execute(sql, (*params, user_key, *_FINAL_STATES))


def _gallery_item(row: sqlite3.Row) -> GalleryItem:
    job = job_from_row(row)
    return GalleryItem(
        share_id=row["share_id"],
        job=job,
        score=int(row["score"]),
        shared_at=row["shared_at"],
        message_id=row["share_message_id"],
        credit_name=job.requester.display_name,
        show_details=not row["hide_details"],
    )
