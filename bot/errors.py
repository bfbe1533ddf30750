"""The one exception tree of the core. Adapters turn these into user messages.

Every message is written for the person who typed the command: it says what was wrong and,
where there is one, what to do instead. An error carries a catalogue key and its parameters
(a :class:`bot.i18n.Message`), so each adapter shows it in the server's language with
:meth:`TurbobotError.render`; ``str(err)`` is the English text, for logs and tests.
"""

from __future__ import annotations

from bot.domain import Language
from bot.i18n import Message, msg


class TurbobotError(Exception):
    """Base of every error a user may see."""

    def __init__(self, message: Message | str, /) -> None:
        # A plain str is a text that is not in the catalogue (shown as it is, in any language).
        self.message = message
        super().__init__(str(message))

    @property
    def key(self) -> str | None:
        return self.message.key if isinstance(self.message, Message) else None

    def render(self, lang: Language | str | None = Language.EN) -> str:
        """The message in ``lang`` (a :class:`Language` or a platform locale)."""
        if isinstance(self.message, Message):
            return self.message.render(lang)
        return self.message


class BadRequest(TurbobotError):
    """The request itself is invalid (prompt, steps, aspect, seed, cfg ...)."""


class BadPrompt(BadRequest):
    """Empty, too long or otherwise unusable prompt."""


class UnknownStyle(BadRequest):
    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        if known:
            super().__init__(
                msg("core.unknown_style", name=repr(name), known=", ".join(known[:10]))
            )
        else:
            super().__init__(msg("core.unknown_style_none", name=repr(name)))


class RateLimited(TurbobotError):
    """Refused by admission; ``retry_after`` seconds until it would be accepted."""

    def __init__(self, message: Message | str, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class QueueFull(TurbobotError):
    """A pending-jobs cap (per user, per server or global) is reached."""


class NotFound(TurbobotError):
    """No such job (or not one of yours)."""


class NotAllowed(TurbobotError):
    """The user may not do this (not the owner, not an admin, blocked)."""


class GenerationFailed(TurbobotError):
    """Final: this image cannot be made (a broken style file, out of GPU memory even after a
    lower memory profile); trying again would fail the same way. The message says why."""


class EngineCrashed(TurbobotError):
    """Retryable: the engine (or the GPU worker running the job) crashed, hung or lost the
    job. The core runs the job again, up to its attempt cap, then fails it."""


class StorageError(TurbobotError):
    """The database or the image folder cannot be written (full disk, locked database)."""


class ShuttingDown(TurbobotError):
    """The bot is stopping and takes no new jobs."""
