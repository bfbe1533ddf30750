"""The prompt word filter: variants of a banned word are caught, innocent words pass."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bot.errors import BadPrompt, BadRequest
from bot.moderation import BLOCKED_MESSAGE, check_prompt_words, check_words, fold, is_blocked

WORDS = ("ass", "gore*", "*porn", "blood bath", "血腥", "ヌード")


def wide(text: str) -> str:
    """``text`` in fullwidth letters (written this way so the source shows no look-alikes)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@pytest.mark.parametrize(
    "prompt",
    [
        "an ass on a hill",
        "AN ASS",
        "Ass-shaped cloud",
        "my_ass",  # underscore separates words
        wide("ass") + " in fullwidth",
        "a\u200bss with a zero-width space inside",
        "a\u00adss with a soft hyphen inside",
        "as\u2060s with a word joiner inside",
        "gore",
        "GOREFEST",
        "gorey scene",
        "softporn",
        "a blood   bath",
        "BLOOD\u3000BATH",  # ideographic space
        "画一个血腥的场景",
        "画一个血\u200b腥的场景",
        "画ass图",  # a Latin word between Chinese characters is still a whole word
        "ヌードの絵",
        wide("gore"),
        "ǵore with an accent",
    ],
)
def test_banned_word_variants_are_blocked(prompt: str) -> None:
    assert is_blocked(prompt, WORDS)
    with pytest.raises(BadPrompt) as refused:
        check_prompt_words(prompt, WORDS)
    assert str(refused.value) == str(BLOCKED_MESSAGE)


@pytest.mark.parametrize(
    "prompt",
    [
        "a class of students",
        "a glass of water",
        "assessment day",
        "bass guitar",
        "passage through the hills",
        "an ancient gorge",  # gore* needs "gore" at the start
        "porno",  # *porn must end the word
        "blood orange bath",
        "a bloodbath-free meadow",  # the phrase needs its space
        "血液检查",
        "",
    ],
)
def test_innocent_words_containing_banned_ones_pass(prompt: str) -> None:
    assert not is_blocked(prompt, WORDS)
    check_prompt_words(prompt, WORDS)


def test_no_words_block_nothing() -> None:
    assert not is_blocked("anything at all", ())
    assert not is_blocked("anything at all", ("*", "  "))


def test_fold_is_the_same_for_every_spelling() -> None:
    assert {fold(s) for s in ("Nude", wide("NUDE"), "nu\u200bde", "NUDE", "nüde")} == {"nude"}


def test_banned_words_are_checked_and_stored_folded() -> None:
    assert check_words([" Gore* ", wide("BAD"), "bad", "", "Two  Words"]) == (
        "gore*",
        "bad",
        "two words",
    )
    with pytest.raises(BadRequest):
        check_words(["***"])
    with pytest.raises(BadRequest):
        check_words(["x" * 65])
    with pytest.raises(BadRequest):
        check_words([f"w{i}" for i in range(201)])


def test_a_banned_number_matches_as_written_only() -> None:
    # The leetspeak pass ignores words without a letter; the plain pass still sees numbers.
    assert is_blocked("a 1488 sign", ("1488",))
    assert not is_blocked("a 14880 sign", ("1488",))
    assert not is_blocked("a 455 engine", ("ass",))


def test_banned_words_in_other_scripts_are_stored_as_written_and_still_match() -> None:
    russian = "\u0433\u043e\u0440\u0430"  # a Russian word, all four letters look Latin-ish
    assert check_words([russian.upper()]) == (russian,)
    assert is_blocked(f"a {russian} at dawn", (russian,))
    assert not is_blocked("a mountain at dawn", (russian,))


# Issue 15 item 9: characters that render as nothing (fillers, blanks, marks, selectors, tags)
# inside a banned word must not split it.
INVISIBLE_INSIDE = [
    "\u3164",  # Hangul filler
    "\uffa0",  # halfwidth Hangul filler
    "\u115f",  # Hangul choseong filler
    "\u1160",  # Hangul jungseong filler
    "\u2800",  # Braille pattern blank
    "\u034f",  # combining grapheme joiner
    "\u200e",  # left-to-right mark
    "\u200f",  # right-to-left mark
    "\u2061",  # function application
    "\u2062",  # invisible times
    "\u2063",  # invisible separator
    "\u2064",  # invisible plus
    "\ufe0f",  # variation selector 16
    "\U000e0100",  # variation selector 17
    "\U000e0067",  # tag latin small letter g
    "\U000e007f",  # cancel tag
    "\u180e",  # Mongolian vowel separator
    "\u17b4",  # Khmer vowel inherent aq
    "\U0001d173",  # musical symbol begin beam
]


@pytest.mark.parametrize("mark", INVISIBLE_INSIDE, ids=lambda c: f"U+{ord(c):04X}")
def test_invisible_characters_inside_a_banned_word_do_not_hide_it(mark: str) -> None:
    assert is_blocked(f"go{mark}re", WORDS)
    assert is_blocked(f"g{mark}o{mark}r{mark}e{mark}fest", WORDS)
    assert is_blocked(f"血{mark}腥", WORDS)


CORPUS = tomllib.loads(
    (Path(__file__).parents[1] / "corpus" / "word_filter.toml").read_text(encoding="utf-8")
)


def _corpus_rows() -> list[object]:
    """Every corpus row as (text, should it be blocked), known limits marked strict xfail."""
    known = pytest.mark.xfail(strict=True, reason="a known limit, listed in the corpus")
    rows: list[object] = []
    for table, blocked, marks in (
        ("evasions", True, ()),
        ("innocent", False, ()),
        ("known_misses", True, (known,)),
        ("known_false_positives", False, (known,)),
    ):
        for row in CORPUS[table]:
            label = f"{table}: {row.get('how') or row['why']}"
            rows.append(pytest.param(row["text"], blocked, id=label, marks=marks))
    return rows


@pytest.mark.parametrize(("text", "blocked"), _corpus_rows())
def test_word_filter_corpus(text: str, blocked: bool) -> None:
    # Measured: 77/77 evasions caught (23/77 before issues 15/16), 0/62 innocent prompts
    # blocked; 4 known misses and 3 known false positives are listed, and expected, as such.
    assert is_blocked(text, tuple(CORPUS["words"])) is blocked
