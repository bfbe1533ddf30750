"""The sanitiser for model-written text: mentions, markup, special tokens, invisible characters,
length. Pure function, table-driven."""

from __future__ import annotations

import pytest

from bot.textsafe import ELLIPSIS, FULLWIDTH_AT, clean_generated, cut

AT = FULLWIDTH_AT


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("a red fox in the snow", "a red fox in the snow"),
        # mentions: Discord's @everyone/@here/<@id>/<@&role>, Telegram's @user
        ("hi @everyone and @here", f"hi {AT}everyone and {AT}here"),
        ("ping <@123> <@!45> <@&6>", f"ping <{AT}123> <{AT}!45> <{AT}&6>"),
        ("ask @botfather", f"ask {AT}botfather"),
        # markup: code, bold/italic, strike, spoiler, headings, quotes, bullets
        ("**Prompt:** a `cat` on ~~a~~ ||mat||", "Prompt: a cat on a mat"),
        ("```python\nprint(1)\n```", "python print(1)"),
        ("# Title\n> quoted\n- one\n2. two", "Title quoted one two"),
        ("snake_case stays, __dunder__ goes", "snake_case stays, dunder goes"),
        # the model's own special tokens
        ("a cat<|im_end|>\n<|im_start|>assistant", "a cat assistant"),
        ("<|vision_start|><|image_pad|>x", "x"),
        # control, format, bidi and invisible characters; line breaks become spaces
        ("a\x00b\x1bc\u200bd\u202ee\u2066f\ufeffg", "abcdefg"),
        ("one\n\ntwo\tthree\r\nfour", "one two three four"),
        ("\u3164\u2800 blank fillers", "blank fillers"),
        # text to draw stays verbatim, Chinese included
        ('a sign "OPEN 24h"，写着“你好”', 'a sign "OPEN 24h"，写着“你好”'),  # noqa: RUF001 - Chinese punctuation meant
        ("cafe\u0301", "caf\u00e9"),  # NFC
    ],
)
def test_clean_generated(raw: str, want: str) -> None:
    assert clean_generated(raw, max_chars=200) == want


def test_a_lone_surrogate_becomes_a_visible_replacement_and_encodes() -> None:
    out = clean_generated("bad \ud83d emoji", max_chars=50)
    assert out == "bad \ufffd emoji"
    out.encode("utf-8")  # would raise on a surrogate


def test_long_text_is_cut_at_a_word_with_an_ellipsis() -> None:
    text = "word " * 100
    out = clean_generated(text, max_chars=42)
    assert len(out) <= 42
    assert out.endswith(ELLIPSIS)
    assert out[:-1].split() == ["word"] * (len(out[:-1].split()))


def test_one_long_word_is_cut_inside_the_word() -> None:
    assert cut("x" * 50, 10) == "x" * 9 + ELLIPSIS


def test_text_that_fits_is_not_cut() -> None:
    assert clean_generated("exactly ten", max_chars=11) == "exactly ten"


def test_the_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        clean_generated("x", max_chars=0)
