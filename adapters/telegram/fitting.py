"""The one place where every Telegram text is fitted to Telegram's limits.

Whatever a handler sends — a reply, an edit, a photo caption, a button's answer — passes through
:meth:`FittingBot._do_post` on its way to the Bot API, and a text over its limit is shortened
there (between whole characters, with "…"), so no path can be refused with "message is too
long": a 5,000-character style name in an error, a long prompt in a caption, a long banned-word
list in ``/settings``. A lone surrogate (which no request can encode) becomes U+FFFD here too.
Texts that have something worth keeping at their end (a caption's settings line) still budget
themselves first; this is the guarantee, not the layout.

Overriding ``_do_post`` is how python-telegram-bot's own ``ExtBot`` adds rate limiting: it is
the method every API call goes through, with the endpoint's name and its parameters.
"""

from __future__ import annotations

import re
from typing import Any

from telegram.ext import ExtBot

from adapters.telegram.texts import CALLBACK_ANSWER_LIMIT, CAPTION_LIMIT, MESSAGE_LIMIT, shorten

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# endpoint -> (parameter, limit in UTF-16 code units)
LIMITS: dict[str, tuple[str, int]] = {
    "sendMessage": ("text", MESSAGE_LIMIT),
    "editMessageText": ("text", MESSAGE_LIMIT),
    "sendPhoto": ("caption", CAPTION_LIMIT),
    "sendDocument": ("caption", CAPTION_LIMIT),
    "editMessageCaption": ("caption", CAPTION_LIMIT),
    "answerCallbackQuery": ("text", CALLBACK_ANSWER_LIMIT),
}


def fit(endpoint: str, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the text of ``endpoint`` shortened to its limit (other calls unchanged)."""
    rule = LIMITS.get(endpoint)
    if rule is None:
        return data
    key, limit = rule
    value = data.get(key)
    if isinstance(value, str):
        # A lone surrogate (user text quoted in an error) cannot be encoded for the request.
        data[key] = shorten(_LONE_SURROGATE.sub("\ufffd", value), limit)
    return data


class FittingBot(ExtBot[Any]):
    """PTB's ``ExtBot`` (rate limiter and all) that fits every text before it is sent."""

    async def _do_post(
        self, endpoint: str, data: dict[str, Any], **timeouts: Any
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        return await super()._do_post(endpoint, fit(endpoint, data), **timeouts)
