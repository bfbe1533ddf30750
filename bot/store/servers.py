"""Per-server and per-user tables: server settings, blocked users, the audit log, privacy.

The rules about them (who may change what, which values are allowed) live in
:mod:`bot.community`; here they are only read and written.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

import aiosqlite

from bot.domain import AuditEntry, Language, Platform, SafetyMode, ServerSettings, UserPrivacy
from bot.i18n import msg
from bot.store.connection import Database

_SAVE_SETTINGS = (
    "INSERT OR REPLACE INTO server_settings (server_key, platform, server_id, default_style, "
    "allowed_styles, rate_per_minute, rate_burst, max_pending_per_user, showcase_channel_id, "
    "banned_words, allow_external_share, language, safety_check) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True, slots=True)
class AuditNote:
    """One line of a server's audit log, written in the transaction of what it records."""

    at: float
    server_key: str
    actor_user_id: str
    action: str
    target: str
    detail: str = ""


def settings_from_row(row: sqlite3.Row) -> ServerSettings:
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
        safety_check=SafetyMode(row["safety_check"]) if row["safety_check"] else None,
    )


def settings_row(s: ServerSettings) -> tuple[Any, ...]:
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
        None if s.safety_check is None else str(s.safety_check),
    )


async def write_audit(db: aiosqlite.Connection, note: AuditNote) -> None:
    await db.execute(
        "INSERT INTO audit_log (at, server_key, actor_user_id, action, target, detail) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (note.at, note.server_key, note.actor_user_id, note.action, note.target, note.detail),
    )


async def showcase_posts(db: aiosqlite.Connection, user_key: str) -> list[tuple[str, str]]:
    """(channel, message) of every showcase post of ``user_key``'s images."""
    async with db.execute(
        "SELECT channel_id, message_id FROM shares WHERE user_key = ? AND message_id IS NOT NULL",
        (user_key,),
    ) as cur:
        return [(r["channel_id"], r["message_id"]) for r in await cur.fetchall()]


class ServerTables:
    """Server settings, blocks, the audit log and users' privacy choices."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def settings(self, server_key: str) -> ServerSettings | None:
        rows = await self._db.query(
            "SELECT * FROM server_settings WHERE server_key = ?", (server_key,)
        )
        return settings_from_row(rows[0]) if rows else None

    async def save_settings(self, settings: ServerSettings, note: AuditNote) -> None:
        async with self._db.transaction(msg("core.op.save_settings")) as db:
            await db.execute(_SAVE_SETTINGS, settings_row(settings))
            await write_audit(db, note)

    async def blocked_hashes(self, server_key: str) -> set[str]:
        rows = await self._db.query(
            "SELECT user_hash FROM blocked_users WHERE server_key = ?", (server_key,)
        )
        return {r["user_hash"] for r in rows}

    async def set_blocked(self, digest: str, blocked: bool, note: AuditNote) -> None:
        """Block (or unblock) the user stored as ``digest`` in ``note.server_key``."""
        async with self._db.transaction(msg("core.op.save_block")) as db:
            if blocked:
                await db.execute(
                    "INSERT OR IGNORE INTO blocked_users VALUES (?, ?, ?)",
                    (note.server_key, digest, note.at),
                )
            else:
                await db.execute(
                    "DELETE FROM blocked_users WHERE server_key = ? AND user_hash = ?",
                    (note.server_key, digest),
                )
            await write_audit(db, note)

    async def audit(self, note: AuditNote) -> None:
        async with self._db.transaction(msg("core.op.write_audit")) as db:
            await write_audit(db, note)

    async def audit_log(self, server_key: str, limit: int) -> list[AuditEntry]:
        rows = await self._db.query(
            "SELECT * FROM audit_log WHERE server_key = ? ORDER BY id DESC LIMIT ?",
            (server_key, limit),
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

    async def privacy(self, user_key: str) -> UserPrivacy | None:
        rows = await self._db.query(
            "SELECT share_opt_out, hide_details FROM user_privacy WHERE user_key = ?",
            (user_key,),
        )
        if not rows:
            return None
        return UserPrivacy(bool(rows[0]["share_opt_out"]), bool(rows[0]["hide_details"]))

    async def save_privacy(self, user_key: str, privacy: UserPrivacy) -> list[tuple[str, str]]:
        """Store the choices; opting out withdraws what was shared (votes go with it, ON DELETE
        CASCADE). Returns the (channel, message) showcase posts to delete from the platform."""
        posts: list[tuple[str, str]] = []
        async with self._db.transaction(msg("core.op.save_privacy")) as db:
            await db.execute(
                "INSERT OR REPLACE INTO user_privacy VALUES (?, ?, ?)",
                (user_key, int(privacy.share_opt_out), int(privacy.hide_details)),
            )
            if privacy.share_opt_out:
                posts = await showcase_posts(db, user_key)
                await db.execute("DELETE FROM shares WHERE user_key = ?", (user_key,))
        return posts
