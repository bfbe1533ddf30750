"""The prompt word filter: operator and per-server banned words, hard to dodge by spelling tricks.

Prompt and words are folded the same way before matching: NFKC (fullwidth letters become
ASCII ones), combining accents and invisible format characters (zero-width space, joiners, soft
hyphen) removed, case folded. Latin-like words then match whole words only, so banning ``ass``
leaves ``class`` alone; ``*`` matches any run of letters (``gore*`` also bans ``gores`` and
``gorefest``). Words in scripts written without spaces (Chinese, Japanese) match anywhere.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

from bot.errors import BadPrompt, BadRequest

BLOCKED_MESSAGE = "This prompt was blocked by this server's word filter."
MAX_WORD_CHARS = 64
MAX_WORDS = 200

# Scripts without spaces between words: a banned word there is matched as a substring.
_UNSPACED = (
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3400-\u4dbf"  # CJK Extension A
    "\u4e00-\u9fff"  # CJK Unified Ideographs
    "\uf900-\ufaff"  # CJK Compatibility Ideographs
    "\U00020000-\U0003134f"  # CJK Extensions B..G
)
_UNSPACED_CHAR = re.compile(f"[{_UNSPACED}]")
# A letter or digit of a spaced script: what may not touch a whole word on either side.
# (``_`` and punctuation separate words; CJK characters do too, so "画nsfw图" is caught.)
_WORD_CHAR = f"[^\\W_{_UNSPACED}]"
_LETTERS = f"{_WORD_CHAR}*"


def fold(text: str) -> str:
    """The form both prompts and banned words are compared in (see the module docstring)."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(ch for ch in decomposed if unicodedata.category(ch) not in {"Mn", "Cf"})
    return unicodedata.normalize("NFKC", kept).casefold()


def check_word(raw: str) -> str:
    """A banned word as stored (folded), or BadRequest saying what is wrong with it."""
    word = " ".join(fold(raw).split())
    if not word.replace("*", "").strip():
        raise BadRequest(f"{raw!r} is not a usable banned word: it needs at least one letter.")
    if len(word) > MAX_WORD_CHARS:
        raise BadRequest(f"A banned word may be at most {MAX_WORD_CHARS} characters long.")
    return word


def check_words(raw: Iterable[str]) -> tuple[str, ...]:
    """Folded, de-duplicated banned words in their given order."""
    words = tuple(dict.fromkeys(check_word(w) for w in raw if w.strip()))
    if len(words) > MAX_WORDS:
        raise BadRequest(f"A server may ban at most {MAX_WORDS} words, not {len(words)}.")
    return words


def _pattern(word: str) -> str:
    body = r"\s+".join(
        _LETTERS.join(re.escape(part) for part in token.split("*")) for token in word.split()
    )
    if _UNSPACED_CHAR.search(word):
        return body
    return f"(?<!{_WORD_CHAR}){body}(?!{_WORD_CHAR})"


@functools.lru_cache(maxsize=256)
def _compiled(words: tuple[str, ...]) -> re.Pattern[str] | None:
    folded = [w for w in (" ".join(fold(x).split()) for x in words) if w.replace("*", "")]
    if not folded:
        return None
    return re.compile("|".join(_pattern(w) for w in folded))


def is_blocked(prompt: str, words: tuple[str, ...]) -> bool:
    """True when ``prompt`` contains one of ``words`` (folded; see the module docstring)."""
    pattern = _compiled(words)
    return pattern is not None and pattern.search(fold(prompt)) is not None


def check_prompt_words(prompt: str, words: tuple[str, ...]) -> None:
    """BadPrompt (never naming the word, so the filter cannot be probed) when blocked."""
    if is_blocked(prompt, words):
        raise BadPrompt(BLOCKED_MESSAGE)
