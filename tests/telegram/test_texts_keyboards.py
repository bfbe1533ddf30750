"""The pure parts of the Telegram adapter: UTF-16 limits, captions, callback data."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
from PIL import Image

from adapters.telegram.adapter import api_urls
from adapters.telegram.keyboards import (
    CALLBACK_DATA_LIMIT,
    MAX_ID,
    Action,
    decode,
    encode,
    grid_keyboard,
    page_count,
    resolve_style,
    result_keyboard,
    style_keyboard,
)
from adapters.telegram.photos import PHOTO_LIMIT_BYTES, fits_as_photo
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
        Action.VARY_SUBTLE,
        Action.VARY_STRONG,
        Action.UPSCALE_SUBTLE,
        Action.UPSCALE_CREATIVE,
        Action.REMIX_PROMPT,
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


# ----- the iteration loop (issue 13) -----
def test_grid_buttons_fit_64_bytes_for_the_largest_job_id() -> None:
    job = replace(make_job("x", job_id=MAX_ID), spec=replace(make_job("x").spec, n=4))
    markup = grid_keyboard(job, Language.EN)
    data = all_callback_data(markup)
    assert all(len(d.encode()) <= CALLBACK_DATA_LIMIT for d in data)
    picks = [decode(d) for d in data if d.startswith("tb:u:")]
    pairs = [(c.int_arg(0), c.image_arg(1)) for c in picks if c]
    assert pairs == [(MAX_ID, k) for k in (1, 2, 3, 4)]


@pytest.mark.parametrize("forged", ["0", "10", "-1", "1e2", "٣", ""])
def test_a_forged_image_number_is_refused(forged: str) -> None:
    callback = decode(f"tb:u:5:{forged}")
    assert callback is not None
    with pytest.raises(ValueError, match=r"number|count from 1"):
        callback.image_arg(1)


def test_a_one_image_button_means_image_1() -> None:
    callback = decode(encode(Action.VARY_SUBTLE, 5))
    assert callback is not None
    assert callback.image_arg(1) == 1


def _jpeg(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height)).save(buf, format="JPEG", quality=10)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("size", "fits"),
    [((1536, 1536), True), ((5000, 5000), True), ((5001, 5000), False), ((2000, 100), True),
     ((2001, 100), False), ((100, 2001), False)],
)  # fmt: skip
def test_photo_limits_are_telegrams(size: tuple[int, int], fits: bool) -> None:
    assert fits_as_photo(_jpeg(*size)) is fits


def test_a_photo_over_10_mb_goes_as_a_file() -> None:
    assert not fits_as_photo(_jpeg(64, 64) + b"\0" * PHOTO_LIMIT_BYTES)
