"""Server settings: the rules a server sets for itself (styles, limits, words, showcase,
language), how a change is checked, and the cached settings of each server.

Pure rules first (:func:`server_limits`, :func:`usable_styles`, :func:`pick_default`,
:func:`check_spec`, :func:`apply_change`), then :class:`ServerSettingsBook` which reads and
saves them through the store.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from bot import moderation
from bot.admission import Limits
from bot.community.admin import require_admin
from bot.domain import (
    SETTINGS_FIELDS,
    GenerationSpec,
    Language,
    Platform,
    Requester,
    SafetyMode,
    ServerSettings,
    SettingsChange,
    StyleInfo,
)
from bot.errors import BadRequest, NotAllowed, UnknownStyle
from bot.i18n import msg
from bot.lru import LruDict
from bot.ports import Clock
from bot.store import AuditNote, Store
from bot.validation import NO_STYLE

MAX_RATE_PER_MINUTE = 600.0


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


def _check_style_name(name: str, known: list[str]) -> str:
    folded = name.strip().lower()
    if folded not in known:
        raise UnknownStyle(name, known)
    return folded


def _check_positive(value: float, what: str, ceiling: float) -> None:
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
    if change.safety_check is not None:
        values["safety_check"] = _safety_mode(change.safety_check)
    return values


def _safety_mode(value: str) -> SafetyMode:
    try:
        return SafetyMode(str(value).strip().lower())
    except ValueError:
        choices = ", ".join(SafetyMode)
        raise BadRequest(
            msg("core.unknown_safety_mode", value=repr(value), known=choices)
        ) from None


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


class ServerSettingsBook:
    """Each server's settings, cached (read again from the database when evicted)."""

    def __init__(self, store: Store, clock: Clock, operator: Limits, max_cached: int) -> None:
        self._store = store
        self._clock = clock
        self._operator = operator
        self._cache: LruDict[str, ServerSettings] = LruDict(max_cached)

    def __len__(self) -> int:
        return len(self._cache)

    async def get(self, platform: Platform, server_id: str) -> ServerSettings:
        key = f"{platform}:{server_id}"
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        found = await self._store.servers.settings(key) or ServerSettings(platform, server_id)
        return self._cache.setdefault(key, found)

    async def for_requester(self, requester: Requester) -> ServerSettings | None:
        if requester.server_id is None:
            return None
        return await self.get(requester.platform, requester.server_id)

    async def outside_allowed(self, owner: Requester) -> bool:
        """May images made by ``owner``'s request be shared outside their server?"""
        settings = await self.for_requester(owner)
        return settings is None or settings.allow_external_share

    async def update(
        self, actor: Requester, change: SettingsChange, *, is_admin: bool, known: list[str]
    ) -> ServerSettings:
        server_key = require_admin(actor, is_admin)
        assert actor.server_id is not None  # noqa: S101 (checked by require_admin)
        before = await self.get(actor.platform, actor.server_id)
        after = apply_change(before, change, known, self._operator)
        note = AuditNote(
            self._clock.now(),
            server_key,
            actor.user_id,
            action="settings",
            target="settings",
            detail=describe_change(before, after),
        )
        await self._store.servers.save_settings(after, note)
        self._cache[server_key] = after
        return after
