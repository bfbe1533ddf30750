"""Community features over the store: server settings, shares and votes, privacy, blocks, audit.

:class:`bot.service.Core` delegates the :class:`bot.ports.CommunityApi` calls here and keeps the
job life cycle; this module never touches the queue. Admin rights come from the platform (the
adapter passes ``is_admin``); the checks that they were given live here, once.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from dataclasses import replace
from typing import Any

import aiosqlite

from bot import moderation, texts
from bot.admission import Limits
from bot.domain import (
    SETTINGS_FIELDS,
    AuditEntry,
    GalleryItem,
    GenerationSpec,
    Job,
    JobState,
    Language,
    Platform,
    Requester,
    ServerSettings,
    SettingsChange,
    ShareTicket,
    StyleInfo,
    UserPrivacy,
    VoteResult,
)
from bot.errors import BadRequest, NotAllowed, NotFound, UnknownStyle
from bot.i18n import msg
from bot.lru import LruDict
from bot.ports import Clock, GalleryPeriod, GallerySort
from bot.store import Store, job_from_row
from bot.validation import NO_STYLE

ADMINS_ONLY = msg("core.admins_only")
BLOCKED = msg("core.blocked")
NO_SERVER = msg("core.no_server")
NO_SHOWCASE = msg("core.no_showcase")
OPTED_OUT = texts.YOU_OPTED_OUT
FORGOTTEN = "(forgotten user)"
FORGET_BUSY = msg("core.forget_busy")
MAX_RATE_PER_MINUTE = 600.0
MAX_GALLERY_PAGE = 50
_PERIOD_S: dict[str, float] = {"week": 7 * 86400.0, "month": 30 * 86400.0, "all": math.inf}


def user_hash(server_key: str, user_key: str) -> str:
    """How a blocked user is stored: no readable id, yet the same user maps to the same row."""
    return hashlib.sha256(f"{server_key}\n{user_key}".encode()).hexdigest()


# --- pure rules -------------------------------------------------------------------------------


def server_limits(base: Limits, server: ServerSettings | None) -> Limits:
    """The operator's limits, tightened (never loosened) by a server's own."""
    if server is None:
        return base
    return replace(
        base,
        rate_per_minute=min(base.rate_per_minute, server.rate_per_minute or math.inf),
        burst=min(base.burst, server.rate_burst or base.burst),
        max_pending_per_user=min(
            base.max_pending_per_user, server.max_pending_per_user or base.max_pending_per_user
        ),
    )


def usable_styles(
    styles: list[StyleInfo], server: ServerSettings | None, channel_nsfw: bool
) -> list[str]:
    """Installed styles this server allows, without not-safe-for-work ones outside such channels."""
    allowed = set(server.allowed_styles) if server and server.allowed_styles else None
    return [
        s.name
        for s in styles
        if (allowed is None or s.name in allowed) and (channel_nsfw or not s.nsfw)
    ]


def pick_default(
    user_default: str | None, server: ServerSettings | None, usable: list[str]
) -> str | None:
    """The user's own default style if usable here, else the server's, else none."""
    for candidate in (user_default, server.default_style if server else None):
        if candidate is not None and candidate in usable:
            return candidate
    return None


def check_spec(
    requester: Requester,
    spec: GenerationSpec,
    server: ServerSettings | None,
    styles: list[StyleInfo],
    operator_words: tuple[str, ...],
) -> None:
    """The server's and operator's rules for one image: word filter, allowed and nsfw styles."""
    words = operator_words + (server.banned_words if server else ())
    moderation.check_prompt_words(spec.prompt, words)
    if spec.style is None:
        return
    info = next((s for s in styles if s.name == spec.style), None)
    if server and server.allowed_styles and spec.style not in server.allowed_styles:
        allowed = ", ".join(server.allowed_styles)
        raise BadRequest(msg("core.style_not_allowed", style=repr(spec.style), allowed=allowed))
    if info is not None and info.nsfw and not requester.channel_nsfw:
        raise NotAllowed(msg("core.style_nsfw", style=repr(spec.style)))


def _require_admin(actor: Requester, is_admin: bool) -> str:
    if actor.server_key is None:
        raise BadRequest(NO_SERVER)
    if not is_admin:
        raise NotAllowed(ADMINS_ONLY)
    return actor.server_key


# --- settings values ----------------------------------------------------------------------------


def _check_style_name(name: str, known: list[str]) -> str:
    folded = name.strip().lower()
    if folded not in known:
        raise UnknownStyle(name, known)
    return folded


def _check_positive(value: float, what: str, ceiling: float) -> None:
    """``what`` is the catalogue key naming the setting."""
    """``what`` is the catalogue key naming the setting."""
    if not (value > 0 and math.isfinite(value)):
        raise BadRequest(msg("core.must_be_positive", what=msg(what), value=f"{value:g}"))
    if value > ceiling:
        raise BadRequest(msg("core.at_most", what=msg(what), ceiling=f"{ceiling:g}"))


def _changed_values(change: SettingsChange, known: list[str], operator: Limits) -> dict[str, Any]:
    """The fields ``change`` sets, checked and clamped to the operator's limits."""
    values: dict[str, Any] = {}
    if change.allowed_styles is not None:
        values["allowed_styles"] = tuple(
            dict.fromkeys(_check_style_name(s, known) for s in change.allowed_styles if s.strip())
        )
    if change.default_style is not None:
        values["default_style"] = (
            None
            if change.default_style.strip().lower() in NO_STYLE
            else _check_style_name(change.default_style, known)
        )
    if change.rate_per_minute is not None:
        _check_positive(change.rate_per_minute, "core.what.rate", MAX_RATE_PER_MINUTE)
        values["rate_per_minute"] = min(change.rate_per_minute, operator.rate_per_minute)
    if change.rate_burst is not None:
        _check_positive(change.rate_burst, "core.what.burst", 1000)
        values["rate_burst"] = min(int(change.rate_burst), operator.burst)
    if change.max_pending_per_user is not None:
        _check_positive(change.max_pending_per_user, "core.what.pending", 1000)
        values["max_pending_per_user"] = min(
            int(change.max_pending_per_user), operator.max_pending_per_user
        )
    if change.showcase_channel_id is not None:
        channel = change.showcase_channel_id.strip()
        if not channel:
            raise BadRequest(msg("core.showcase_empty"))
        values["showcase_channel_id"] = channel
    if change.banned_words is not None:
        values["banned_words"] = moderation.check_words(change.banned_words)
    if change.allow_external_share is not None:
        values["allow_external_share"] = bool(change.allow_external_share)
    if change.language is not None:
        try:
            values["language"] = Language(change.language)
        except ValueError:
            choices = ", ".join(Language)
            raise BadRequest(
                msg("core.unknown_language", language=repr(change.language), known=choices)
            ) from None
    return values


def apply_change(
    current: ServerSettings, change: SettingsChange, known: list[str], operator: Limits
) -> ServerSettings:
    """``current`` with ``change`` applied, or BadRequest saying which value is wrong."""
    unknown = change.clear - set(SETTINGS_FIELDS)
    if unknown:
        raise BadRequest(msg("core.unknown_settings", names=", ".join(sorted(unknown))))
    values = _changed_values(change, known, operator)
    both = change.clear & set(values)
    if both:
        raise BadRequest(msg("core.set_and_clear", names=", ".join(sorted(both))))
    defaults = ServerSettings(current.platform, current.server_id)
    values.update({name: getattr(defaults, name) for name in change.clear})
    updated = replace(current, **values)
    if (
        updated.default_style is not None
        and updated.allowed_styles
        and updated.default_style not in updated.allowed_styles
    ):
        raise BadRequest(msg("core.default_not_allowed", style=repr(updated.default_style)))
    return updated


def describe_change(before: ServerSettings, after: ServerSettings) -> str:
    """For the audit log: which fields changed (banned words only counted, not listed)."""
    parts = []
    for name in SETTINGS_FIELDS:
        old, new = getattr(before, name), getattr(after, name)
        if old == new:
            continue
        if name == "banned_words":
            parts.append(f"banned_words: {len(old)} -> {len(new)} words")
        else:
            parts.append(f"{name}: {old!r} -> {new!r}")
    return "; ".join(parts) or "no change"


def _settings_from_row(row: sqlite3.Row) -> ServerSettings:
    return ServerSettings(
        platform=Platform(row["platform"]),
        server_id=row["server_id"],
        default_style=row["default_style"],
        allowed_styles=tuple(json.loads(row["allowed_styles"])),
        rate_per_minute=row["rate_per_minute"],
        rate_burst=row["rate_burst"],
        max_pending_per_user=row["max_pending_per_user"],
        showcase_channel_id=row["showcase_channel_id"],
        banned_words=tuple(json.loads(row["banned_words"])),
        allow_external_share=bool(row["allow_external_share"]),
        language=Language(row["language"]) if row["language"] else None,
    )


def _settings_row(s: ServerSettings) -> tuple[Any, ...]:
    return (
        s.server_key,
        str(s.platform),
        s.server_id,
        s.default_style,
        json.dumps(list(s.allowed_styles)),
        s.rate_per_minute,
        s.rate_burst,
        s.max_pending_per_user,
        s.showcase_channel_id,
        json.dumps(list(s.banned_words), ensure_ascii=False),
        int(s.allow_external_share),
        None if s.language is None else str(s.language),
    )


_SAVE_SETTINGS = (
    "INSERT OR REPLACE INTO server_settings (server_key, platform, server_id, default_style, "
    "allowed_styles, rate_per_minute, rate_burst, max_pending_per_user, showcase_channel_id, "
    "banned_words, allow_external_share, language) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
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
_FINAL_STATES = ("posted", "failed", "cancelled")


class Community:
    """Server settings, shares, votes, privacy, blocks and the audit log, over the store."""

    def __init__(
        self, store: Store, clock: Clock, operator: Limits, max_cached: int = 10_000
    ) -> None:
        self._store = store
        self._clock = clock
        self._operator = operator
        # Both are read again from the database when evicted.
        self._settings: LruDict[str, ServerSettings] = LruDict(max_cached)
        self._blocked: LruDict[str, set[str]] = LruDict(max_cached)

    def cache_sizes(self) -> dict[str, int]:
        return {"server_settings": len(self._settings), "blocked": len(self._blocked)}

    # --- settings ------------------------------------------------------------------------

    async def server_settings(self, platform: Platform, server_id: str) -> ServerSettings:
        key = f"{platform}:{server_id}"
        cached = self._settings.get(key)
        if cached is not None:
            return cached
        rows = await self._store.query("SELECT * FROM server_settings WHERE server_key = ?", (key,))
        found = _settings_from_row(rows[0]) if rows else ServerSettings(platform, server_id)
        return self._settings.setdefault(key, found)

    async def outside_allowed(self, owner: Requester) -> bool:
        """May images made by ``owner``'s request be shared outside their server?"""
        settings = await self.settings_for(owner)
        return settings is None or settings.allow_external_share

    async def settings_for(self, requester: Requester) -> ServerSettings | None:
        if requester.server_id is None:
            return None
        return await self.server_settings(requester.platform, requester.server_id)

    async def update_settings(
        self, actor: Requester, change: SettingsChange, *, is_admin: bool, known: list[str]
    ) -> ServerSettings:
        server_key = _require_admin(actor, is_admin)
        assert actor.server_id is not None  # noqa: S101 (checked by _require_admin)
        before = await self.server_settings(actor.platform, actor.server_id)
        after = apply_change(before, change, known, self._operator)
        async with self._store.transaction("save the server settings") as db:
            await db.execute(_SAVE_SETTINGS, _settings_row(after))
            detail = describe_change(before, after)
            await self._audit(
                db, server_key, actor, action="settings", target="settings", detail=detail
            )
        self._settings[server_key] = after
        return after

    # --- blocks and audit ----------------------------------------------------------------

    async def check_not_blocked(self, requester: Requester, server_key: str | None = None) -> None:
        """NotAllowed when ``requester`` is blocked in ``server_key`` (default: where they are)."""
        key = server_key or requester.server_key
        if key is None:
            return
        if key not in self._blocked:
            rows = await self._store.query(
                "SELECT user_hash FROM blocked_users WHERE server_key = ?", (key,)
            )
            self._blocked.setdefault(key, {r["user_hash"] for r in rows})
        if user_hash(key, requester.user_key) in self._blocked[key]:
            raise NotAllowed(BLOCKED)

    async def set_blocked(
        self, actor: Requester, user_id: str, blocked: bool, *, is_admin: bool
    ) -> None:
        server_key = _require_admin(actor, is_admin)
        target = Requester(actor.platform, user_id, user_id, actor.channel_id, actor.server_id)
        digest = user_hash(server_key, target.user_key)
        async with self._store.transaction("save the block") as db:
            if blocked:
                await db.execute(
                    "INSERT OR IGNORE INTO blocked_users VALUES (?, ?, ?)",
                    (server_key, digest, self._clock.now()),
                )
            else:
                await db.execute(
                    "DELETE FROM blocked_users WHERE server_key = ? AND user_hash = ?",
                    (server_key, digest),
                )
            action = "block" if blocked else "unblock"
            await self._audit(db, server_key, actor, action=action, target=f"user {user_id}")
        self._blocked.pop(server_key, None)  # reloaded on next use

    async def audit_delete(self, actor: Requester, job: Job) -> None:
        """An admin deleted someone else's image."""
        if actor.server_key is None:
            return
        async with self._store.transaction("write the audit log") as db:
            target = f"job #{job.id} of user {job.requester.user_id}"
            await self._audit(db, actor.server_key, actor, action="delete", target=target)

    async def _audit(
        self,
        db: aiosqlite.Connection,
        server_key: str,
        actor: Requester,
        *,
        action: str,
        target: str,
        detail: str = "",
    ) -> None:
        await db.execute(
            "INSERT INTO audit_log (at, server_key, actor_user_id, action, target, detail) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (self._clock.now(), server_key, actor.user_id, action, target, detail),
        )

    async def audit_log(
        self, actor: Requester, *, is_admin: bool, limit: int = 20
    ) -> list[AuditEntry]:
        server_key = _require_admin(actor, is_admin)
        rows = await self._store.query(
            "SELECT * FROM audit_log WHERE server_key = ? ORDER BY id DESC LIMIT ?",
            (server_key, max(1, min(limit, 100))),
        )
        return [
            AuditEntry(
                r["id"],
                r["at"],
                r["server_key"],
                r["actor_user_id"],
                r["action"],
                r["target"],
                r["detail"],
            )
            for r in rows
        ]

    # --- privacy -------------------------------------------------------------------------

    async def privacy(self, requester: Requester) -> UserPrivacy:
        rows = await self._store.query(
            "SELECT share_opt_out, hide_details FROM user_privacy WHERE user_key = ?",
            (requester.user_key,),
        )
        if not rows:
            return UserPrivacy()
        return UserPrivacy(bool(rows[0]["share_opt_out"]), bool(rows[0]["hide_details"]))

    async def set_privacy(
        self,
        requester: Requester,
        *,
        share_opt_out: bool | None = None,
        hide_details: bool | None = None,
    ) -> tuple[UserPrivacy, list[tuple[str, str]]]:
        """The new choices, and the (channel, message) showcase posts to delete now."""
        current = await self.privacy(requester)
        new = UserPrivacy(
            current.share_opt_out if share_opt_out is None else share_opt_out,
            current.hide_details if hide_details is None else hide_details,
        )
        posts: list[tuple[str, str]] = []
        async with self._store.transaction("save your privacy choices") as db:
            await db.execute(
                "INSERT OR REPLACE INTO user_privacy VALUES (?, ?, ?)",
                (requester.user_key, int(new.share_opt_out), int(new.hide_details)),
            )
            if new.share_opt_out:
                # Opting out withdraws what was shared (votes go with it, ON DELETE CASCADE),
                # and the showcase posts are to be deleted from the platform.
                posts = await _showcase_posts(db, requester.user_key)
                await db.execute("DELETE FROM shares WHERE user_key = ?", (requester.user_key,))
        return new, posts

    # --- sharing, votes, gallery ---------------------------------------------------------

    async def share(self, requester: Requester, job: Job) -> ShareTicket:
        if job.requester.user_key != requester.user_key:
            raise NotAllowed(msg("core.share_not_owner"))
        server_key = job.requester.server_key
        if server_key is None or job.requester.server_id is None:
            raise BadRequest(msg("core.share_needs_server"))
        await self.check_not_blocked(requester, server_key)
        if job.state is not JobState.POSTED:
            raise BadRequest(msg("core.share_not_finished", job=job.id))
        privacy = await self.privacy(requester)
        if privacy.share_opt_out:
            raise NotAllowed(OPTED_OUT)
        server = await self.server_settings(job.requester.platform, job.requester.server_id)
        if server.showcase_channel_id is None:
            raise BadRequest(NO_SHOWCASE)
        async with self._store.transaction("share the image") as db:
            await db.execute(
                "INSERT INTO shares (job_id, platform, server_key, user_key, channel_id, "
                "shared_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (job_id) DO NOTHING",
                (
                    job.id,
                    str(job.requester.platform),
                    server_key,
                    requester.user_key,
                    server.showcase_channel_id,
                    self._clock.now(),
                ),
            )
            async with db.execute(
                "SELECT id, channel_id, message_id FROM shares WHERE job_id = ?", (job.id,)
            ) as cur:
                rows = list(await cur.fetchall())
        return ShareTicket(
            share_id=rows[0]["id"],
            job=job,
            channel_id=rows[0]["channel_id"],
            credit_name=job.requester.display_name,
            show_details=not privacy.hide_details,
            message_id=rows[0]["message_id"],
        )

    async def shared_in(self, job_id: int) -> str | None:
        """The showcase channel the job is shared to (and visible in), if any."""
        rows = await self._store.query(
            f"SELECT s.channel_id {_VISIBLE_SHARES} AND s.job_id = ?",
            (job_id,),
        )
        return str(rows[0]["channel_id"]) if rows else None

    async def record_share(self, share_id: int, message_id: str) -> None:
        rows = await self._store.query("SELECT id FROM shares WHERE id = ?", (share_id,))
        if not rows:
            raise NotFound(msg("core.no_such_share", share=share_id))
        await self._store.write_one(
            "UPDATE shares SET message_id = ? WHERE id = ?",
            [message_id, share_id],
            "record the showcase post",
        )

    async def share_by_message(self, platform: Platform, message_id: str) -> int | None:
        rows = await self._store.query(
            "SELECT id FROM shares WHERE platform = ? AND message_id = ?",
            (str(platform), message_id),
        )
        return int(rows[0]["id"]) if rows else None

    async def vote(self, voter: Requester, share_id: int, value: int) -> int:
        if value not in (-1, 0, 1):
            raise BadRequest(msg("core.bad_vote"))
        rows = await self._store.query(
            f"SELECT s.user_key, s.platform {_VISIBLE_SHARES} AND s.id = ?",
            (share_id,),
        )
        if not rows or rows[0]["platform"] != str(voter.platform):
            raise NotFound(msg("core.no_such_share", share=share_id))
        # Votes for your own image are ignored: the score is what others think.
        if rows[0]["user_key"] != voter.user_key:
            if value == 0:
                sql = "DELETE FROM votes WHERE share_id = ? AND voter_key = ?"
                params: list[Any] = [share_id, voter.user_key]
            else:
                sql = "INSERT OR REPLACE INTO votes VALUES (?, ?, ?, ?)"
                params = [share_id, voter.user_key, value, self._clock.now()]
            await self._store.write_one(sql, params, "record the vote")
        score = await self._store.query(
            "SELECT coalesce(sum(value), 0) AS score FROM votes WHERE share_id = ?", (share_id,)
        )
        return int(score[0]["score"])

    async def toggle_vote(self, voter: Requester, share_id: int) -> VoteResult:
        """Like a share, or take back one's like: the core, not the button, knows which."""
        liked = await self.my_vote(voter, share_id) > 0
        score = await self.vote(voter, share_id, 0 if liked else 1)
        return VoteResult(score=score, my_vote=await self.my_vote(voter, share_id))

    async def my_vote(self, voter: Requester, share_id: int) -> int:
        rows = await self._store.query(
            "SELECT value FROM votes WHERE share_id = ? AND voter_key = ?",
            (share_id, voter.user_key),
        )
        return int(rows[0]["value"]) if rows else 0

    async def gallery(
        self,
        platform: Platform,
        server_id: str,
        *,
        sort: GallerySort = "recent",
        period: GalleryPeriod = "all",
        limit: int = 10,
        offset: int = 0,
    ) -> list[GalleryItem]:
        if sort not in ("recent", "top") or period not in _PERIOD_S:
            raise BadRequest(msg("core.bad_gallery"))
        since = self._clock.now() - _PERIOD_S[period]
        order = "score DESC, " if sort == "top" else ""
        rows = await self._store.query(
            f"{_GALLERY} ORDER BY {order}s.shared_at DESC, s.id DESC LIMIT ? OFFSET ?",
            (
                f"{platform}:{server_id}",
                since,
                max(1, min(limit, MAX_GALLERY_PAGE)),
                max(0, offset),
            ),
        )
        return [_gallery_item(r) for r in rows]

    # --- remix and forget ----------------------------------------------------------------

    async def forget(self, requester: Requester) -> tuple[int, list[str], list[tuple[str, str]]]:
        """Delete every row of this user; returns (jobs deleted, their image paths, the
        (channel, message) posts to delete from the platform).

        Only finished jobs go (the caller made sure none is in flight); other users' remixes
        lose the link to the forgotten original and the prompt they copied from it; audit
        entries keep the action, not the user. The rate buckets stay: they are kept under a
        digest of the user's key, not the key (see ``bot.store.bucket_key``).
        """
        key, final = requester.user_key, _FINAL_STATES
        mine = f"SELECT id FROM jobs WHERE user_key = ? AND state IN ({', '.join('?' * 3)})"  # noqa: S608
        async with self._store.transaction("forget your data") as db:
            async with db.execute(
                f"SELECT image_path FROM jobs WHERE id IN ({mine})",  # noqa: S608
                (key, *final),
            ) as cur:
                paths = [r["image_path"] for r in await cur.fetchall() if r["image_path"]]
            posts = await _showcase_posts(db, key)
            posts += await _result_posts(db, mine, (key, *final))
            await _drop_copied_prompts(db, mine, (key, *final), key)
            await db.execute(
                f"UPDATE jobs SET parent_job_id = NULL WHERE parent_job_id IN ({mine})",  # noqa: S608
                (key, *final),
            )
            await db.execute("DELETE FROM votes WHERE voter_key = ?", (key,))
            await db.execute("DELETE FROM shares WHERE user_key = ?", (key,))
            cur = await db.execute(f"DELETE FROM jobs WHERE id IN ({mine})", (key, *final))  # noqa: S608
            count = cur.rowcount
            # rate_buckets: only a row of an older version, keyed by the readable user key.
            for table in ("rate_buckets", "user_prefs", "user_privacy"):
                await db.execute(f"DELETE FROM {table} WHERE user_key = ?", (key,))  # noqa: S608
            await self._forget_in_audit(db, requester)
        await self._store.checkpoint()
        return count, paths, posts

    async def _forget_in_audit(self, db: aiosqlite.Connection, requester: Requester) -> None:
        servers = f"{requester.platform}:%"
        await db.execute(
            "UPDATE audit_log SET actor_user_id = ? WHERE actor_user_id = ? AND server_key LIKE ?",
            (FORGOTTEN, requester.user_id, servers),
        )
        # Targets end in "user <id>"; keep what was done, drop who it was done to.
        suffix = f"user {requester.user_id}"
        await db.execute(
            "UPDATE audit_log SET target = substr(target, 1, length(target) - length(?)) || ? "
            "WHERE server_key LIKE ? AND (target = ? OR substr(target, -length(?) - 1) = ?)",
            (suffix, FORGOTTEN, servers, suffix, suffix, f" {suffix}"),
        )


async def _showcase_posts(db: aiosqlite.Connection, user_key: str) -> list[tuple[str, str]]:
    """(channel, message) of every showcase post of ``user_key``'s images."""
    async with db.execute(
        "SELECT channel_id, message_id FROM shares WHERE user_key = ? AND message_id IS NOT NULL",
        (user_key,),
    ) as cur:
        return [(r["channel_id"], r["message_id"]) for r in await cur.fetchall()]


async def _result_posts(
    db: aiosqlite.Connection, mine: str, params: tuple[str, ...]
) -> list[tuple[str, str]]:
    """(channel, message) of the results posted for the jobs ``mine`` selects."""
    where = "posted_message_id IS NOT NULL AND posted_channel_id IS NOT NULL"
    sql = f"SELECT posted_channel_id, posted_message_id FROM jobs WHERE {where} AND id IN ({mine})"  # noqa: S608
    async with db.execute(sql, params) as cur:
        return [(r["posted_channel_id"], r["posted_message_id"]) for r in await cur.fetchall()]


async def _drop_copied_prompts(
    db: aiosqlite.Connection, mine: str, params: tuple[str, ...], user_key: str
) -> None:
    """Other users' finished jobs made from these (and from those, and so on) keep their image
    but lose the prompt they copied: it was the forgotten user's words."""
    final = ", ".join("?" * len(_FINAL_STATES))
    sql = (
        f"WITH RECURSIVE copied(id) AS ({mine} UNION "  # noqa: S608 (constants)
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
