"""The prompt word filter: operator and per-server banned words, hard to dodge by spelling tricks.

Prompt and words are folded the same way before matching: NFKC (fullwidth and mathematical
letters become ASCII ones), accents and everything that shows as nothing removed (zero-width and
bidi characters, variation selectors, tags, Hangul fillers, the Braille blank), case folded, and
each look-alike letter replaced by the ASCII one it imitates (a Cyrillic or Greek o becomes o),
by Unicode's confusables data. Latin-like words then match whole words only, so banning ``ass``
leaves ``class`` alone; ``*`` matches any run of letters (``gore*`` also bans ``gores`` and
``gorefest``). Words in scripts written without spaces (Chinese, Japanese) match anywhere.

A second pass catches deliberate misspellings: leetspeak (``g0re``, ``a$$``, ``k1ll``), letters
spaced out (``g o r e``, ``s.e.x``) and a Chinese or Japanese word split by a space. It only
looks at words that have a letter, so numbers such as ``455`` or ``1024`` never read as words;
a number glued to letters can (``53x`` is caught as ``sex``, on purpose). The corpus in
``tests/corpus/word_filter.toml`` measures both passes, known limits included.
"""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from collections.abc import Callable, Iterable

from confusable_homoglyphs import confusables

from bot.errors import BadPrompt, BadRequest
from bot.i18n import msg

BLOCKED_MESSAGE = msg("core.prompt_blocked")
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

# What is dropped from a word: marks (accents, the combining grapheme joiner, variation
# selectors), format characters (zero-width space and joiners, bidi marks, invisible operators,
# tag characters) and unassigned code points, none of which shows as a letter ...
_INVISIBLE_CATEGORIES = frozenset({"Mn", "Me", "Cf", "Cn"})
# ... and the blanks that Unicode files as letters or symbols: the Hangul fillers and the
# Braille blank render as empty space but would otherwise split "go" + filler + "re" in two.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")

# Leetspeak: the digits and symbols that stand in for each letter of a banned word.
_LEET = {
    "a": "4@",
    "b": "8",
    "e": "3",
    "g": "69",
    "i": "1!|",
    "l": "1|",
    "o": "0",
    "s": "5$",
    "t": "7+",
    "z": "2",
}
_LEET_SYMBOLS = re.escape(
    "".join(sorted({c for subs in _LEET.values() for c in subs} - set(string.digits)))
)
# A word as leetspeak writes it: letters, digits and the symbols above.
_LEET_WORD = re.compile(f"(?:{_WORD_CHAR}|[{_LEET_SYMBOLS}])+")
_GAP = r"[\s.\-_*\u30fb]"  # what spaces letters out: space, dot, hyphen, underscore, star, ・
_SPACED_OUT = re.compile(
    f"(?<!{_WORD_CHAR})(?:{_WORD_CHAR}{_GAP}){{2,}}{_WORD_CHAR}(?!{_WORD_CHAR})"
)
_SPLIT_UNSPACED = re.compile(f"(?<=[{_UNSPACED}]){_GAP}+(?=[{_UNSPACED}])")
# Look-alikes are not looked up for ASCII, Chinese and Japanese (where the confusables data
# would turn the ideographic zero into an o) or CJK punctuation.
_NO_LOOKALIKE = re.compile(f"[\\x00-\\x7f\u3000-\u303f{_UNSPACED}]")
# Unicode lists some look-alikes only through a small capital (Cyrillic te looks like a small
# capital T; Cyrillic ka like kra, which looks like a small capital K): how many hops through the
# confusables data to take before giving up.
_MAX_HOPS = 2
_SMALL_CAPITAL = re.compile(r"LATIN LETTER SMALL CAPITAL ([A-Z])")


def _shows(ch: str) -> bool:
    return ch not in _BLANK_LETTERS and unicodedata.category(ch) not in _INVISIBLE_CATEGORIES


def fold(text: str) -> str:
    """The form banned words are stored and shown in: NFKC, no accents or invisibles, casefold."""
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize("NFKC", "".join(filter(_shows, decomposed))).casefold()


def _homoglyphs(ch: str) -> list[str]:
    """Single characters that Unicode's confusables data says look like ``ch``, folded."""
    found = confusables.is_confusable(ch, preferred_aliases=[])
    if not found:
        return []
    glyphs = (fold(str(glyph["c"])) for glyph in found[0]["homoglyphs"])
    return [glyph for glyph in glyphs if len(glyph) == 1]


@functools.lru_cache(maxsize=1)
def _ascii_lookalikes() -> dict[str, str]:
    """Every character that looks like an ASCII letter or digit, mapped to it (built once;
    should Unicode list one as both, the letter wins over the digit)."""
    return {
        glyph: ascii_char.lower()
        for ascii_char in string.digits + string.ascii_letters
        for glyph in _homoglyphs(ascii_char)
        if not glyph.isascii()
    }


def _ascii_twin(glyph: str) -> str | None:
    if glyph.isascii():
        return glyph.lower() if glyph.isalnum() else None
    small_capital = _SMALL_CAPITAL.fullmatch(unicodedata.name(glyph, ""))
    return small_capital[1].lower() if small_capital else _ascii_lookalikes().get(glyph)


@functools.lru_cache(maxsize=4096)
def _lookalike(ch: str) -> str:
    """The ASCII letter or digit that ``ch`` imitates, or ``ch`` itself."""
    glyphs, seen = [ch], {ch}
    for hop in range(_MAX_HOPS + 1):
        for glyph in glyphs:
            if twin := _ascii_twin(glyph):
                return twin
        if hop < _MAX_HOPS:
            glyphs = [g for glyph in glyphs for g in _homoglyphs(glyph) if g not in seen]
            seen.update(glyphs)
    return ch


def skeleton(text: str) -> str:
    """The form prompts and banned words are matched in: ``fold`` and look-alikes made ASCII."""
    folded = fold(text)
    if folded.isascii():
        return folded
    return "".join(ch if _NO_LOOKALIKE.match(ch) else _lookalike(ch) for ch in folded)


def _respelled(text: str) -> str:
    """``text`` (a skeleton) for the leetspeak pass: spaced-out letters and split CJK words
    joined, and every word without a letter blanked so that numbers never read as leetspeak."""
    text = _SPACED_OUT.sub(lambda m: re.sub(_GAP, "", m[0]), text)
    text = _SPLIT_UNSPACED.sub("", text)
    return _LEET_WORD.sub(lambda m: m[0] if any(c.isalpha() for c in m[0]) else " ", text)


def check_word(raw: str) -> str:
    """A banned word as stored (folded), or BadRequest saying what is wrong with it."""
    word = " ".join(fold(raw).split())
    if not word.replace("*", "").strip():
        raise BadRequest(msg("core.banned_word_empty", word=repr(raw)))
    if len(word) > MAX_WORD_CHARS:
        raise BadRequest(msg("core.banned_word_long", limit=MAX_WORD_CHARS))
    return word


def check_words(raw: Iterable[str]) -> tuple[str, ...]:
    """Folded, de-duplicated banned words in their given order."""
    words = tuple(dict.fromkeys(check_word(w) for w in raw if w.strip()))
    if len(words) > MAX_WORDS:
        raise BadRequest(msg("core.banned_words_many", limit=MAX_WORDS, count=len(words)))
    return words


def _as_leet(ch: str) -> str:
    return f"[{re.escape(ch + _LEET[ch])}]" if ch in _LEET else re.escape(ch)


def _body(word: str, letter: Callable[[str], str]) -> str:
    """``word`` as a regex, each of its characters written by ``letter``."""
    return r"\s+".join(
        _LETTERS.join("".join(map(letter, part)) for part in token.split("*"))
        for token in word.split()
    )


def _alternatives(words: list[str], letter: Callable[[str], str]) -> re.Pattern[str]:
    """One regex for all ``words``: whole words, but anywhere for unspaced scripts."""
    whole = [_body(w, letter) for w in words if not _UNSPACED_CHAR.search(w)]
    anywhere = [_body(w, letter) for w in words if _UNSPACED_CHAR.search(w)]
    # The boundaries stand outside the alternation: checked once per position, not once per word.
    # (No whole word starts with a Chinese character: skip those positions early.)
    if whole:
        start = f"(?<!{_WORD_CHAR})(?![{_UNSPACED}])"
        anywhere.insert(0, f"{start}(?:{'|'.join(whole)})(?!{_WORD_CHAR})")
    return re.compile("|".join(anywhere))


@functools.lru_cache(maxsize=256)
def _compiled(words: tuple[str, ...]) -> tuple[re.Pattern[str], re.Pattern[str]] | None:
    """The words as written and as leetspeak may write them, or None when there are none."""
    folded = [w for w in (" ".join(skeleton(x).split()) for x in words) if w.replace("*", "")]
    if not folded:
        return None
    return _alternatives(folded, re.escape), _alternatives(folded, _as_leet)


def is_blocked(prompt: str, words: tuple[str, ...]) -> bool:
    """True when ``prompt`` contains one of ``words`` (see the module docstring)."""
    patterns = _compiled(words)
    if patterns is None:
        return False
    as_written, as_leet = patterns
    text = skeleton(prompt)
    return as_written.search(text) is not None or as_leet.search(_respelled(text)) is not None


def check_prompt_words(prompt: str, words: tuple[str, ...]) -> None:
    """BadPrompt (never naming the word, so the filter cannot be probed) when blocked."""
    if is_blocked(prompt, words):
        raise BadPrompt(BLOCKED_MESSAGE)
