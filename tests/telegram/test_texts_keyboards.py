"""The pure parts of the Telegram adapter: UTF-16 limits, captions, callback data."""

from __future__ import annotations

import pytest

from adapters.telegram.adapter import api_urls
from adapters.telegram.keyboards import (
    CALLBACK_DATA_LIMIT,
    Action,
    decode,
    encode,
    page_count,
    resolve_style,
    result_keyboard,
    style_keyboard,
)
from adapters.telegram.texts import CAPTION_LIMIT, ELLIPSIS, caption, shorten, utf16_len
from bot.domain import GenerationSpec, Job, JobState, Language, Platform, Requester, StyleInfo


def make_job(prompt: str, job_id: int = 123, style: str | None = "watercolor") -> Job:
    return Job(
        id=job_id,
        requester=Requester(Platform.TELEGRAM, "42", "Ada", "42"),
        spec=GenerationSpec(prompt, style, seed=4_294_967_295, steps=4, width=1024, height=1024),
        state=JobState.POSTED,
        created_at=0.0,
    )


def all_callback_data(markup: object) -> list[str]:
    rows = markup.inline_keyboard  # type: ignore[attr-defined]
    return [b.callback_data for row in rows for b in row if b.callback_data is not None]


# ----- shortening by UTF-16 code units -----
def test_utf16_len_counts_astral_characters_twice() -> None:
    assert utf16_len("a") == 1
    assert utf16_len("猫") == 1
    assert utf16_len("😀") == 2


def test_shorten_keeps_text_that_fits() -> None:
    assert shorten("a cat", 5) == "a cat"


def test_shorten_never_splits_a_surrogate_pair() -> None:
    text = "a" + "😀" * 10
    out = shorten(text, 6)  # budget 5 units after the ellipsis: "a" + 2 emoji
    assert out == "a😀😀" + ELLIPSIS
    assert utf16_len(out) <= 6
    out.encode("utf-8")  # no lone surrogates


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        # a family emoji (ZWJ sequence) either stays whole or goes
        ("ab👨\u200d👩\u200d👧xyz", 8, "ab" + ELLIPSIS),
        # a skin tone modifier stays with its hand
        ("ab👍🏽cd", 5, "ab" + ELLIPSIS),
        # e + combining acute accent stays together
        ("abe\u0301cd", 4, "ab" + ELLIPSIS),
        # a flag is two regional indicators: never half a flag
        ("a🇨🇳🇯🇵", 7, "a🇨🇳" + ELLIPSIS),
    ],
)
def test_shorten_keeps_user_perceived_characters_whole(
    text: str, limit: int, expected: str
) -> None:
    assert shorten(text, limit) == expected


def test_caption_fits_1024_units_with_emoji_prompt() -> None:
    job = make_job("🐱" * 5000)
    text = caption(job, None, Language.EN)
    assert utf16_len(text) <= CAPTION_LIMIT
    assert text.endswith("#123")
    assert ELLIPSIS in text
    text.encode("utf-8")


def test_caption_keeps_a_short_prompt_whole() -> None:
    text = caption(make_job("a lighthouse in a storm"), None, Language.EN)
    assert text.startswith("a lighthouse in a storm\n")
    assert "seed 4294967295" in text


# ----- callback data -----
def test_result_keyboard_has_every_button_within_64_bytes() -> None:
    markup = result_keyboard(make_job("x", job_id=2**40), lang=Language.EN)
    data = all_callback_data(markup)
    assert {decode(d).action for d in data if decode(d)} == {  # type: ignore[union-attr]
        Action.REROLL,
        Action.VARIATION,
        Action.RESTYLE,
        Action.ENHANCE,
        Action.ORIGINAL,
        Action.DELETE,
    }
    assert all(len(d.encode()) <= CALLBACK_DATA_LIMIT for d in data)
    share = [b for row in markup.inline_keyboard for b in row if b.switch_inline_query]
    assert share[0].switch_inline_query == f"#{2**40}"


def test_decode_round_trips_and_rejects_foreign_data() -> None:
    cb = decode(encode(Action.REROLL, 123))
    assert cb is not None
    assert (cb.action, cb.int_arg(0)) == (Action.REROLL, 123)
    assert decode("other:reroll:1") is None
    assert decode("tb:nope:1") is None
    assert decode(None) is None


def test_encode_refuses_data_over_64_bytes() -> None:
    with pytest.raises(ValueError, match="64 bytes"):
        encode(Action.STYLE_PICK, "x" * 80)


def test_style_names_with_colons_and_long_names_survive_the_round_trip() -> None:
    long_name = "very-long-community-style-name-" + "é" * 40
    styles = [
        StyleInfo("ink:v2", "Ink v2", "水墨2", "", 1.0),
        StyleInfo(long_name, "Long", "长", "", 1.0),
    ]
    for job_id in (None, 2**40):
        data = all_callback_data(style_keyboard(styles, 0, "en", job_id=job_id))
        assert all(len(d.encode()) <= CALLBACK_DATA_LIMIT for d in data)
        picked = []
        for d in data:
            cb = decode(d)
            assert cb is not None
            if cb.action in {Action.STYLE_PICK, Action.RESTYLE_PICK}:
                picked.append(resolve_style(cb.args[-1], styles))
        assert picked == ["ink:v2", long_name]


def test_style_keyboard_pages_and_localises() -> None:
    styles = [StyleInfo(f"s{i}", f"Style {i}", f"风格{i}", "", 1.0) for i in range(19)]
    assert page_count(styles) == 3
    last = style_keyboard(styles, 2, "zh-hans")
    labels = [b.text for row in last.inline_keyboard for b in row]
    assert labels[:3] == ["风格16", "风格17", "风格18"]
    assert "◀ 上一页" in labels  # the buttons follow the user's language too
    assert "更多 ▶" not in labels
    assert "不用风格" in labels
    english = [b.text for row in style_keyboard(styles, 0, "en").inline_keyboard for b in row]
    assert english[-2:] == ["More ▶", "No style"]


# ----- configuration -----
@pytest.mark.parametrize(
    "given",
    ["http://127.0.0.1:8081", "http://127.0.0.1:8081/", "http://127.0.0.1:8081/bot"],
)
def test_api_base_url_accepts_root_or_bot_path(given: str) -> None:
    assert api_urls(given) == ("http://127.0.0.1:8081/bot", "http://127.0.0.1:8081/file/bot")
