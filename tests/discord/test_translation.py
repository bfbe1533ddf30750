"""The pure parts of the Discord adapter: captions, autocomplete, custom ids, localisation."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import discord
import pytest
from discord import app_commands

from adapters.discord import commands as commands_module
from adapters.discord import community_format as cfmt
from adapters.discord import format as fmt
from adapters.discord.community import settings_change
from adapters.discord.texts import Translator, command_text, say
from adapters.discord.views import (
    RESULT_ACTIONS,
    Action,
    ForgetButton,
    GalleryButton,
    JobButton,
    RestyleSelect,
    gallery_view,
    result_view,
)
from bot.domain import (
    GalleryItem,
    GenerationSpec,
    Job,
    JobKind,
    JobState,
    Language,
    Platform,
    ShareTicket,
    StyleInfo,
    Timings,
)
from bot.errors import BadRequest
from bot.i18n import t

JOB_ID = 123_456_789


def _job(prompt: str = "a red fox in snow", **kw: object) -> Job:
    spec = GenerationSpec(prompt=prompt, style="ink", seed=42, steps=4, width=1024, height=1024)
    requester = fmt.requester_of(7, "Alice", 11, 22)
    fields: dict[str, object] = {
        "id": JOB_ID,
        "requester": requester,
        "spec": spec,
        "state": JobState.POSTED,
        "created_at": 100.0,
        "started_at": 101.0,
        "finished_at": 103.5,
        "timings": Timings(text_encode_ms=10, denoise_ms=2000, decode_ms=300, jpeg_ms=20),
    }
    fields.update(kw)
    return Job(**fields)  # type: ignore[arg-type]


def test_requester_carries_ids_only() -> None:
    r = fmt.requester_of(7, "Alice", 11, None)
    assert (r.platform, r.user_id, r.channel_id, r.server_id) == (Platform.DISCORD, "7", "11", None)
    assert r.user_key == "discord:7"


def test_caption_mentions_requester_and_has_settings() -> None:
    text = fmt.caption(_job(), None, Language.EN)
    assert text.startswith("<@7> **a red fox in snow**")
    for part in ("style ink", "seed 42", "4 steps", "1:1", "2.5 s", f"#{JOB_ID}"):
        assert part in text


def test_caption_shortens_long_prompts_but_info_keeps_more() -> None:
    job = _job("word " * 500)
    assert len(fmt.caption(job, None, Language.EN)) < 500
    assert "…" in fmt.caption(job, None, Language.EN)
    assert len(fmt.info_text(job, Language.EN)) <= fmt.MESSAGE_LIMIT
    assert "denoise 2000 ms" in fmt.info_text(job, Language.EN)


def test_autocomplete_is_capped_at_25_and_matches_either_language() -> None:
    styles = [StyleInfo(f"style{i}", f"Style {i}", f"风格{i}", "d", 1.0) for i in range(60)]
    assert len(fmt.style_choices(styles, "", chinese=False)) == 25
    assert fmt.style_choices(styles, "风格7", chinese=True)[0] == ("风格7 — d", "style7")
    assert [v for _, v in fmt.style_choices(styles, "style5", chinese=False)] == [
        "style5",
        *[f"style5{i}" for i in range(10)],
    ]


def test_autocomplete_labels_fit_discord_limit() -> None:
    styles = [StyleInfo("x", "X" * 80, "", "y" * 200, 1.0)]
    ((label, value),) = fmt.style_choices(styles, "x", chinese=False)
    assert len(label) <= 100
    assert value == "x"


@pytest.mark.parametrize("action", list(Action))
def test_custom_ids_round_trip_and_fit(action: Action) -> None:
    button = JobButton(action, JOB_ID)
    custom_id = button.custom_id
    assert len(custom_id) <= 100
    match = re.fullmatch(JobButton.__discord_ui_compiled_template__, custom_id)
    assert match is not None
    assert (Action(match["action"]), int(match["job"])) == (action, JOB_ID)


def test_restyle_select_id_does_not_collide_with_buttons() -> None:
    select = RestyleSelect(JOB_ID, [StyleInfo("ink", "Ink", "水墨", "", 1.0)])
    assert re.fullmatch(JobButton.__discord_ui_compiled_template__, select.custom_id) is None
    assert re.fullmatch(RestyleSelect.__discord_ui_compiled_template__, select.custom_id)


def test_result_view_is_persistent_with_every_action() -> None:
    view = result_view(JOB_ID, Language.EN)
    assert view.is_persistent()
    ids = [item.custom_id for item in view.children if isinstance(item, JobButton)]
    enhance = f"tb:enhance:{JOB_ID}"
    assert ids == [f"tb:remix:{JOB_ID}", *(f"tb:{a}:{JOB_ID}" for a in RESULT_ACTIONS), enhance]


def test_result_views_keep_to_discords_limits() -> None:
    """At most 5 buttons a row and 5 rows, for one image and for every grid size."""
    for images in (1, 2, 3, 4):
        view = result_view(JOB_ID, Language.EN, images)
        rows = [row["components"] for row in view.to_components()]
        assert len(rows) <= 5, images
        assert all(len(row) <= 5 for row in rows), images
        assert [c["custom_id"] for c in rows[-1]] == [f"tb:enhance:{JOB_ID}"], images


def test_replies_come_in_the_users_language() -> None:
    assert say("zh-CN", "queued", position=2, eta=30) == "已排队：第 2 位，约 30 秒。"  # noqa: RUF001
    assert say(discord.Locale.american_english, "queued", position=2, eta=30).startswith("Queued")


async def test_translator_gives_chinese_for_zh_cn_only() -> None:
    t = Translator()
    text = command_text("discord.cmd.imagine")
    assert text.message == "Make an image from a prompt"
    ctx: app_commands.TranslationContext[Any, Any] = app_commands.TranslationContext(
        app_commands.TranslationContextLocation.other, None
    )
    assert await t.translate(text, discord.Locale.chinese, ctx) == "根据提示词生成图片"
    assert await t.translate(text, discord.Locale.french, ctx) is None


def test_message_link_and_too_big() -> None:
    assert fmt.message_link("1", "2", "3") == "https://discord.com/channels/1/2/3"
    assert fmt.message_link(None, "2", "3") == "https://discord.com/channels/@me/2/3"
    assert fmt.too_big(15 * 2**20, 10 * 2**20) == ("15.0", "10")


# ----------------------------------------------------------------- community


def _ticket(show_details: bool, name: str = "Alice") -> ShareTicket:
    return ShareTicket(7, _job(), "55", name, show_details)


def test_showcase_caption_credits_by_name_and_shows_details() -> None:
    text = cfmt.showcase_caption(_ticket(show_details=True), Language.EN)
    assert text.startswith("**a red fox in snow**")
    assert f"Shared by Alice · #{JOB_ID} · style ink · seed 42" in text
    assert "<@" not in text


def test_showcase_caption_hides_details_and_defuses_names() -> None:
    text = cfmt.showcase_caption(_ticket(show_details=False, name="@everyone **big**"), Language.EN)
    assert "red fox" not in text
    assert "seed" not in text
    assert "@everyone" not in text  # escaped: shown as typed, pings nobody
    assert "\\*\\*big\\*\\*" in text


def test_settings_change_from_options() -> None:
    change = settings_change(
        default_style="none",
        allowed_styles="ink, watercolor,",
        banned_words="all",
        rate_per_minute=None,
        language="zh",
        reset="pending_cap, showcase_channel",
    )
    assert change.allowed_styles == ("ink", "watercolor")
    assert change.banned_words == ()
    assert change.rate_per_minute is None  # not given: unchanged
    assert change.language is Language.ZH
    assert change.clear == {"default_style", "max_pending_per_user", "showcase_channel_id"}
    with pytest.raises(BadRequest, match="Unknown setting 'colour'"):
        settings_change(reset="colour")


def test_gallery_and_forget_ids_round_trip() -> None:
    view = gallery_view("top", "week", 2, has_next=True)
    assert view is not None
    ids = [item.custom_id for item in view.children if isinstance(item, GalleryButton)]
    assert ids == ["tb:gal:top:week:1", "tb:gal:top:week:3"]
    assert gallery_view("recent", "all", 1, has_next=False) is None
    match = re.fullmatch(GalleryButton.__discord_ui_compiled_template__, ids[1])
    assert match is not None
    assert (match["sort"], match["period"], match["page"]) == ("top", "week", "3")
    forget = ForgetButton(JOB_ID).custom_id
    assert re.fullmatch(ForgetButton.__discord_ui_compiled_template__, forget)
    assert re.fullmatch(JobButton.__discord_ui_compiled_template__, forget) is None


def test_gallery_text_numbers_items_across_pages() -> None:
    item = GalleryItem(7, _job(), 3, 100.0, "99", "Alice", show_details=False)
    text = cfmt.gallery_text(
        [item], sort="top", period="week", page=2, locale="en-US", link_of={7: "LINK"}
    )
    assert text.splitlines()[0] == "**Gallery · top · week** (page 2)"
    assert text.splitlines()[1] == f"`6.` ⭐ 3 · *details hidden* — Alice · #{JOB_ID} · LINK"


def test_every_command_text_has_a_chinese_version() -> None:
    source = Path(commands_module.__file__).read_text(encoding="utf-8")
    keys = set(re.findall(r'_\("([^"]+)"\)', source))
    assert len(keys) > 30
    for key in keys:
        assert t(key, Language.ZH) != t(key, Language.EN), key


def test_info_says_how_an_image_was_made_from_another() -> None:
    base = _job().spec
    varied = replace(base, kind=JobKind.VARY, init_image="images/1.jpg", strength=0.35)
    assert "variation, strength 0.35" in fmt.info_text(_job(spec=varied), Language.EN)
    assert "变体" in fmt.info_text(_job(spec=varied), Language.ZH)
    assert "strength" not in fmt.info_text(_job(), Language.EN)  # from text: nothing to say


def test_info_shows_the_users_prompt_and_the_enhanced_one() -> None:
    job = _job("a fox")
    spec = replace(job.spec, enhance=True)
    enhanced = replace(job, spec=spec, text="a fox, detailed")
    for lang in (Language.EN, Language.ZH):
        info = fmt.info_text(enhanced, lang)
        assert "a fox" in info
        assert "a fox, detailed" in info
        assert "✨" in info
    assert "✨" not in fmt.info_text(job, Language.EN)
