"""Who may administer a server: the platform says (the adapter passes ``is_admin``); the check
that it was given lives here, once."""

from __future__ import annotations

from bot.domain import Requester
from bot.errors import BadRequest, NotAllowed
from bot.i18n import msg

ADMINS_ONLY = msg("core.admins_only")
NO_SERVER = msg("core.no_server")


def require_admin(actor: Requester, is_admin: bool) -> str:
    """The server key ``actor`` administers, or the error saying why not."""
    if actor.server_key is None:
        raise BadRequest(NO_SERVER)
    if not is_admin:
        raise NotAllowed(ADMINS_ONLY)
    return actor.server_key
