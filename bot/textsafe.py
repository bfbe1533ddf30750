"""Text a model wrote, made safe to post: the core runs it once before any platform sees it.

A VLM's text (a describe result, an enhanced prompt) is untrusted like user input, and worse:
it can echo text read from an image ("@everyone", a link, chat markup) or leak the model's own
special tokens. :func:`clean_generated` returns one plain paragraph that mentions nobody, formats
nothing and fits the limit. Adapters still send it as plain text with mentions disabled; this
is the layer that does not depend on them remembering.
"""

from __future__ import annotations

import re
import unicodedata

FULLWIDTH_AT = "\uff20"  # looks like @, mentions nobody on Discord or Telegram
ELLIPSIS = "\u2026"
# Qwen's chat and vision markers (<|im_end|>, <|image_pad|> ...) if decoding left any behind.
_SPECIAL_TOKEN = re.compile(r"<\|[a-z_]{1,30}\|>")
# Discord/Telegram markdown that changes how text renders: code, bold/italic/strike/spoiler runs.
_MARKUP_RUNS = re.compile(r"`+|\*{1,3}|_{2,}|~~|\|\|")
# Block markup at the start of a line: headings, quotes, list bullets.
_LINE_MARKUP = re.compile(r"^\s*(?:#{1,6}\s+|>+\s*|[-*+]\s+|\d+[.)]\s+)", re.MULTILINE)
_DROP_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_INVISIBLE = frozenset("\u3164\u115f\u1160\uffa0\u2800\ufffc")


def clean_generated(text: str, *, max_chars: int) -> str:
    """One paragraph of ``text`` without special tokens, control or invisible characters,
    mentions or markup, at most ``max_chars`` long (cut at a word, with an ellipsis)."""
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    text = _fix_surrogates(unicodedata.normalize("NFC", text))
    text = _SPECIAL_TOKEN.sub(" ", text)
    text = _LINE_MARKUP.sub("", text)
    text = _MARKUP_RUNS.sub("", text)
    text = "".join(_keep(ch) for ch in text)
    text = text.replace("@", FULLWIDTH_AT)
    return cut(" ".join(text.split()), max_chars)


def cut(text: str, max_chars: int) -> str:
    """``text`` if it fits, else its first words and an ellipsis (a word cut only if it must)."""
    if len(text) <= max_chars:
        return text
    head = text[: max_chars - 1]
    space = head.rfind(" ")
    if space >= max_chars // 2:  # a break in the second half: end on a whole word
        head = head[:space]
    return head.rstrip() + ELLIPSIS


def _keep(ch: str) -> str:
    if ch in "\n\t\r":
        return " "  # whitespace survives as a space (then collapsed)
    if ch in _INVISIBLE or unicodedata.category(ch) in _DROP_CATEGORIES:
        return ""
    return ch


def _fix_surrogates(text: str) -> str:
    """A lone surrogate cannot be encoded as UTF-8; it becomes U+FFFD (then is kept visible)."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
