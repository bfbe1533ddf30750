"""A user's privacy: opting out of sharing, hiding the details of their images, ``/forget``."""

from __future__ import annotations

from bot.domain import Requester, UserPrivacy
from bot.i18n import msg
from bot.store import Forgotten, Store

FORGOTTEN = "(forgotten user)"  # what the audit log says instead of a forgotten user's id
FORGET_BUSY = msg("core.forget_busy")


class Privacy:
    """Privacy choices and forgetting, over the store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def privacy(self, requester: Requester) -> UserPrivacy:
        found = await self._store.servers.privacy(requester.user_key)
        return UserPrivacy() if found is None else found

    async def set_privacy(
        self,
        requester: Requester,
        *,
        share_opt_out: bool | None = None,
        hide_details: bool | None = None,
    ) -> tuple[UserPrivacy, list[tuple[str, str]]]:
        """The new choices, and the (channel, message) showcase posts to delete now: opting
        out withdraws what was shared (its votes go with it)."""
        current = await self.privacy(requester)
        new = UserPrivacy(
            current.share_opt_out if share_opt_out is None else share_opt_out,
            current.hide_details if hide_details is None else hide_details,
        )
        posts = await self._store.servers.save_privacy(requester.user_key, new)
        return new, posts

    async def forget(self, requester: Requester) -> tuple[int, list[str], list[tuple[str, str]]]:
        """Delete every row of this user; returns (jobs deleted, their image paths, the
        (channel, message) posts to delete from the platform).

        Only finished jobs go (the caller made sure none is in flight); other users' remixes
        lose the link to the forgotten original and the prompt they copied from it; audit
        entries keep the action, not the user. The rate buckets stay: they are kept under a
        digest of the user's key, not the key (see ``bot.store.bucket_key``).
        """
        done: Forgotten = await self._store.community.forget_user(
            requester.platform, requester.user_key, requester.user_id, FORGOTTEN
        )
        return done.jobs, done.image_paths, done.posts
