"""Community features on Telegram end to end: real python-telegram-bot over loopback against
the fake Bot API, the real core on a real SQLite file, FakeExecutor for the GPU."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adapters.telegram import community_texts as ct
from adapters.telegram.args import gallery_view, settings_change
from adapters.telegram.community_texts import message_link
from adapters.telegram.keyboards import result_keyboard, showcase_keyboard, shown_score, with_score
from bot.domain import GenerationSpec, Job, JobState, Language, Platform, Requester
from bot.errors import BadRequest
from bot.i18n import t
from tests.telegram.conftest import Harness
from tests.telegram.fake_botapi import (
    JSON,
    Call,
    callback_query,
    command_message,
    inline_query,
    sent_message,
    user,
)

GROUP = -100555
SHOWCASE = -100777
ADMIN = user(1, first_name="Root")
ADA = user(42, first_name="Ada")
BOB = user(43, first_name="Bob")
ADMINS_ONLY = ct.say("en", "admins_only")
BLOCKED_PROMPT = "This prompt was blocked by this server's word filter."


def buttons(call: Call) -> list[str]:
    rows = call.params["reply_markup"]["inline_keyboard"]
    return [b.get("callback_data") or f"share:{b['switch_inline_query']}" for r in rows for b in r]


def in_chat(chat: int) -> object:
    return lambda c: c.params.get("chat_id") == str(chat)


async def say(bot: Harness, text: str, sender: JSON, *, reply_to: JSON | None = None) -> str:
    """Send a command in the group; return the bot's text answer there."""
    where = in_chat(GROUP)
    before = len([c for c in bot.api.calls_of("sendMessage") if where(c)])  # type: ignore[operator]
    await bot.api.push(command_message(text, from_user=sender, chat_id=GROUP, reply_to=reply_to))
    calls = await bot.api.wait_for("sendMessage", before + 1, where=where)  # type: ignore[arg-type]
    return str(calls[before].params["text"])


async def imagine(bot: Harness, text: str, sender: JSON = ADA) -> Call:
    """``/imagine`` in the group; the result's sendPhoto call."""
    before = len(bot.api.calls_of("sendPhoto"))
    await bot.api.push(command_message(text, from_user=sender, chat_id=GROUP))
    photo = (await bot.api.wait_for("sendPhoto", before + 1))[before]
    await bot.core.wait_until_idle(f"telegram:{sender['id']}")
    return photo


async def press(bot: Harness, data: str, message: JSON, sender: JSON, query_id: str) -> str:
    """Press a button; the text of the answerCallbackQuery (empty when silent)."""
    await bot.api.push(callback_query(data, message, from_user=sender, query_id=query_id))
    answers = await bot.api.wait_for(
        "answerCallbackQuery", where=lambda c: c.params["callback_query_id"] == query_id
    )
    return str(answers[0].params.get("text", ""))


async def setup_group(bot: Harness, *settings: str) -> None:
    bot.api.set_member(GROUP, ADMIN["id"], "administrator")
    bot.api.set_member(SHOWCASE, ADMIN["id"], "administrator")  # a showcase they administer
    for line in ("showcase " + str(SHOWCASE), *settings):
        await say(bot, f"/settings set {line}", ADMIN)


async def share(bot: Harness, photo: Call, sender: JSON, query_id: str) -> Call:
    """Press 🏆 Showcase under a result; the sendPhoto that posted it to the showcase chat."""
    before = len(bot.api.calls_of("sendPhoto"))
    job_id = next(d for d in buttons(photo) if d.startswith("tb:share:"))
    answer = await press(bot, job_id, sent_message(photo), sender, query_id)
    assert answer == ct.say("en", "shared")
    return (await bot.api.wait_for("sendPhoto", before + 1))[before]


def requester(sender: JSON) -> Requester:
    return Requester(
        Platform.TELEGRAM, str(sender["id"]), sender["first_name"], str(GROUP), str(GROUP)
    )


# ----- settings -----
async def test_admin_sets_and_sees_settings_in_the_group_language(bot: Harness) -> None:
    bot.api.set_member(GROUP, ADMIN["id"], "creator")
    bot.api.set_member(SHOWCASE, ADMIN["id"], "creator")
    shown = await say(bot, f"/settings set showcase {SHOWCASE}", ADMIN)
    assert f"showcase chat: {SHOWCASE}" in shown
    shown = await say(bot, "/settings set banned foo, bar baz", ADMIN)
    assert "banned words: foo, bar baz" in shown
    shown = await say(bot, "/settings set language zh", ADMIN)
    assert f"展示频道: {SHOWCASE}" in shown
    assert "本群设置" in await say(bot, "/settings", ADMIN)

    saved = await bot.core.server_settings(Platform.TELEGRAM, str(GROUP))
    assert saved.showcase_channel_id == str(SHOWCASE)
    assert saved.banned_words == ("foo", "bar baz")
    assert saved.language is Language.ZH
    # Replies follow the group's language from now on, for everyone.
    assert await say(bot, "/gallery", ADA) == ct.say("zh", "gallery_empty")


async def test_a_chinese_group_gets_core_errors_buttons_and_status_in_chinese(
    bot: Harness,
) -> None:
    """Issue 16: the core's errors were English everywhere, and so were the buttons."""
    bot.api.set_member(GROUP, ADMIN["id"], "creator")
    await say(bot, "/settings set language zh", ADMIN)
    # A core error (validation), rendered in the group's language; English stays in str(err).
    refused = await say(bot, "/imagine a cat --steps 99", ADA)
    assert refused == "步数必须在 1 到 8 之间，而不是 99。"  # noqa: RUF001
    assert "Unknown style" not in await say(bot, "/imagine a cat --style nope", ADA)
    photo = await imagine(bot, "/imagine a red fox")
    labels = [b["text"] for r in photo.params["reply_markup"]["inline_keyboard"] for b in r]
    assert "🎲 重新生成" in labels
    assert "🗑 删除" in labels
    assert "种子" in photo.params["caption"]


async def test_bad_settings_get_a_clear_answer(bot: Harness) -> None:
    bot.api.set_member(GROUP, ADMIN["id"], "administrator")
    assert "Unknown setting 'colour'" in await say(bot, "/settings set colour red", ADMIN)
    assert "burst needs a whole number" in await say(bot, "/settings set burst lots", ADMIN)
    assert "Unknown style" in await say(bot, "/settings set default_style nope", ADMIN)
    assert "Usage: /settings" in await say(bot, "/settings frobnicate", ADMIN)


async def test_non_admins_are_refused_every_admin_command(bot: Harness) -> None:
    await setup_group(bot)
    photo = await imagine(bot, "/imagine a kite", ADA)
    for n, command in enumerate(
        ["/settings", "/settings set rate 1", "/block 42", "/unblock 42", "/audit"]
    ):
        assert await say(bot, command, BOB) == ADMINS_ONLY, command
        asked = bot.api.calls_of("getChatMember")[-1]
        assert asked.params["user_id"] == str(BOB["id"]), n
    # Deleting someone else's image is refused too (Bob is no admin).
    answer = await press(bot, "tb:del:1", sent_message(photo), BOB, "q-del")
    assert "Only the person who made this image" in answer
    assert bot.core.image_file(await bot.core.job(1)) is not None
    settings = await bot.core.server_settings(Platform.TELEGRAM, str(GROUP))
    assert settings.rate_per_minute is None
    entries = await bot.core.audit_log(requester(ADMIN), is_admin=True)
    assert all(e.actor_user_id == str(ADMIN["id"]) for e in entries)  # only the setup


async def test_admin_commands_outside_groups_say_so(bot: Harness) -> None:
    await bot.api.push(command_message("/settings", from_user=ADMIN))
    answer = (await bot.api.wait_for("sendMessage"))[0]
    assert answer.params["text"] == ct.say("en", "groups_only")


# ----- sharing, votes, gallery, remix -----
async def test_share_posts_the_cached_photo_to_the_showcase_with_credit(bot: Harness) -> None:
    await setup_group(bot)
    photo = await imagine(bot, "/imagine a lantern festival --seed 9 --style ink")
    assert "tb:share:1" in buttons(photo)
    assert "share:#1" in buttons(photo)
    post = await share(bot, photo, ADA, "q-share")

    assert post.params["chat_id"] == str(SHOWCASE)
    assert post.files == {}  # by file_id: no re-upload
    assert post.params["photo"] == photo.result["photo"][-1]["file_id"]
    caption = post.params["caption"]
    assert caption.startswith("by Ada\na lantern festival\nink · seed 9")
    share_id = (await bot.core.gallery(Platform.TELEGRAM, str(GROUP)))[0].share_id
    assert buttons(post) == [f"tb:vote:{share_id}", "tb:remix:1"]
    [item] = await bot.core.gallery(Platform.TELEGRAM, str(GROUP))
    assert item.message_id == str(post.result["message_id"])
    assert item.job.id == 1

    # A second press is answered, and the image is not posted to the showcase again.
    photos = len(bot.api.calls_of("sendPhoto"))
    answer = await press(bot, "tb:share:1", sent_message(photo), ADA, "q-share-again")
    assert answer == ct.say("en", "shared")
    assert len(bot.api.calls_of("sendPhoto")) == photos


async def test_hidden_details_leave_only_the_credit(bot: Harness) -> None:
    await setup_group(bot)
    assert "hidden" in await say(bot, "/privacy hide on", ADA)
    photo = await imagine(bot, "/imagine my secret prompt --seed 3")
    post = await share(bot, photo, ADA, "q-share")
    assert post.params["caption"] == "by Ada · #1"


async def test_votes_toggle_and_order_the_top_gallery(bot: Harness) -> None:
    await setup_group(bot)
    first = await share(bot, await imagine(bot, "/imagine first light"), ADA, "q-s1")
    second = await share(bot, await imagine(bot, "/imagine second wind"), ADA, "q-s2")
    vote_2 = buttons(second)[0]

    assert await press(bot, vote_2, sent_message(second), BOB, "q-v1") == "You liked it (1)."
    edited = (await bot.api.wait_for("editMessageReplyMarkup"))[-1]
    assert edited.params["reply_markup"]["inline_keyboard"][0][0]["text"] == "👍 1"
    top = await say(bot, "/gallery top week", BOB)
    assert top.index("#2 ") < top.index("#1 ")
    recent = await say(bot, "/gallery", BOB)
    assert recent.index("#2 ") < recent.index("#1 ")  # newest first

    # Pressing again (on the message as it is now) takes the like back; a like on the first
    # one puts that on top.
    assert "removed (0)" in await press(bot, vote_2, sent_message(edited), BOB, "q-v2")
    await press(bot, buttons(first)[0], sent_message(first), BOB, "q-v3")
    top = await say(bot, "/gallery top", BOB)
    assert top.index("#1 ") < top.index("#2 ")
    assert "👍 1 · #1 · Ada" in top
    assert f"https://t.me/c/{str(SHOWCASE)[4:]}/{first.result['message_id']}" in top


async def test_gallery_pages_with_buttons(bot: Harness) -> None:
    await setup_group(bot)
    for n in range(6):
        await share(bot, await imagine(bot, f"/imagine picture {n}"), ADA, f"q-s{n}")
    await say(bot, "/gallery", BOB)
    page = [c for c in bot.api.calls_of("sendMessage") if "page 1" in c.params["text"]][-1]
    assert buttons(page) == ["tb:gal:ra:1"]
    assert "#6 " in page.params["text"]
    assert "#1 " not in page.params["text"]
    await press(bot, "tb:gal:ra:1", sent_message(page), BOB, "q-page")
    edit = (await bot.api.wait_for("editMessageText"))[-1]
    assert "page 2" in edit.params["text"]
    assert "#1 " in edit.params["text"]
    assert buttons(edit) == ["tb:gal:ra:0"]


async def test_remix_credits_the_original(bot: Harness) -> None:
    await setup_group(bot)
    original = await imagine(bot, "/imagine a paper crane --seed 77 --style watercolor")
    post = await share(bot, original, ADA, "q-share")
    before = len(bot.api.calls_of("sendPhoto"))
    await press(bot, "tb:remix:1", sent_message(post), BOB, "q-remix")
    remix = (await bot.api.wait_for("sendPhoto", before + 1))[before]
    await bot.core.wait_until_idle("telegram:43")

    assert remix.params["caption"].endswith("\nremix of #1 by Ada")
    job = await bot.core.job(2)
    assert job.requester.user_id == "43"
    assert job.parent_job_id == 1
    assert (job.spec.prompt, job.spec.seed, job.spec.style) == ("a paper crane", 77, "watercolor")
    # A reroll of one's own image is no remix: no credit line.
    await press(bot, "tb:reroll:1", sent_message(original), ADA, "q-reroll")
    reroll = (await bot.api.wait_for("sendPhoto", before + 2))[before + 1]
    assert "remix of" not in reroll.params["caption"]


async def test_opt_out_is_honoured_in_showcase_gallery_and_inline_sharing(bot: Harness) -> None:
    await setup_group(bot)
    shared = await imagine(bot, "/imagine a quiet pond")
    await share(bot, shared, ADA, "q-share")
    second = await imagine(bot, "/imagine a quiet forest")

    assert "opted out" in await say(bot, "/privacy optout on", ADA)
    assert await say(bot, "/gallery", BOB) == ct.say("en", "gallery_empty")
    answer = await press(bot, "tb:share:2", sent_message(second), ADA, "q-share-2")
    assert answer  # the core's refusal, as an alert
    assert answer != ct.say("en", "shared")
    assert len([c for c in bot.api.calls_of("sendPhoto") if in_chat(SHOWCASE)(c)]) == 1  # type: ignore[operator]
    await bot.api.push(inline_query("quiet", from_user=ADA, query_id="iq-out"))
    inline = (await bot.api.wait_for("answerInlineQuery"))[0]
    assert inline.params["results"] == []


async def test_groups_can_keep_images_inside(bot: Harness) -> None:
    await setup_group(bot, "share_outside off")
    photo = await imagine(bot, "/imagine a private joke")
    assert "share:#1" not in buttons(photo)
    assert "tb:share:1" in buttons(photo)
    await bot.api.push(inline_query("joke", from_user=ADA, query_id="iq-in"))
    inline = (await bot.api.wait_for("answerInlineQuery"))[0]
    assert inline.params["results"] == []


# ----- moderation -----
FULL_WIDTH = "".join(chr(ord(c) + 0xFEE0) for c in "grumbleweed")  # U+FF47 ...: full-width letters


@pytest.mark.parametrize(
    "prompt",
    ["a GRUMBLEWEED field", f"a {FULL_WIDTH} field", "a grumble\u200bweed field"],
)
async def test_banned_word_variants_get_the_generic_refusal(bot: Harness, prompt: str) -> None:
    await setup_group(bot, "banned grumbleweed")
    answer = await say(bot, f"/imagine {prompt}", ADA)
    assert answer == BLOCKED_PROMPT
    assert "grumbleweed" not in answer.lower()
    assert bot.executor.calls == []


async def test_block_by_reply_then_audit_then_unblock(bot: Harness) -> None:
    await setup_group(bot)
    bobs = command_message("/imagine hello", from_user=BOB, chat_id=GROUP)["message"]
    assert "43" in await say(bot, "/block", ADMIN, reply_to=bobs)
    assert "blocked" in (await say(bot, "/imagine a cat", BOB)).lower()
    assert bot.executor.calls == []

    log = await say(bot, "/audit", ADMIN)
    assert log.startswith("Audit log")
    assert "· 1 · " in log
    assert "43" in log
    assert "43" in await say(bot, "/unblock 43", ADMIN)
    await imagine(bot, "/imagine a cat", BOB)


async def test_admin_deletes_any_image_and_it_is_audited(bot: Harness) -> None:
    await setup_group(bot)
    photo = await imagine(bot, "/imagine something rude")
    assert await press(bot, "tb:del:1", sent_message(photo), ADMIN, "q-del") == "Deleted."
    assert bot.core.image_file(await bot.core.job(1)) is None
    entries = await bot.core.audit_log(requester(ADMIN), is_admin=True)
    [deleted] = [e for e in entries if e.action == "delete"]
    assert "#1" in deleted.target
    assert deleted.actor_user_id == str(ADMIN["id"])
    assert "delete" in await say(bot, "/audit", ADMIN)


# ----- /forget -----
async def test_forget_leaves_nothing_of_the_user(bot: Harness) -> None:
    zed = user(987654321, first_name="Zebulon")
    await setup_group(bot)
    photo = await imagine(bot, "/imagine a unique xylograph", zed)
    post = await share(bot, photo, zed, "q-share")
    await press(bot, buttons(post)[0], sent_message(post), BOB, "q-vote")
    await say(bot, "/privacy hide on", zed)
    path = bot.core.image_file(await bot.core.job(1))
    assert path is not None

    confirm = await say(bot, "/forget", zed)
    assert confirm == ct.say("en", "forget_confirm")
    asked = bot.api.calls_of("sendMessage")[-1]
    assert buttons(asked) == ["tb:forget:987654321", "tb:keep:987654321"]
    # Only the user themself can confirm.
    assert await press(bot, "tb:forget:987654321", sent_message(asked), BOB, "q-f0") == ct.say(
        "en", "not_yours"
    )
    done = await press(bot, "tb:forget:987654321", sent_message(asked), zed, "q-f1")
    assert done == ct.say("en", "forget_done", count=1)

    who = requester(zed)
    assert await bot.core.history(who) == []
    assert await bot.core.gallery(Platform.TELEGRAM, str(GROUP)) == []
    assert not path.exists()
    data = await asyncio.to_thread(_all_bytes, Path(bot.settings.data_dir))
    assert b"987654321" not in data
    assert b"Zebulon" not in data
    assert b"xylograph" not in data
    # The bot's own posts of the image went too: the showcase post and the result (item 5).
    deleted = await bot.api.wait_for("deleteMessage", 2)
    where = {(int(c.params["chat_id"]), int(c.params["message_id"])) for c in deleted}
    posts = [sent_message(post), sent_message(photo)]
    assert where >= {(m["chat"]["id"], m["message_id"]) for m in posts}


async def test_privacy_usage_and_state(bot: Harness) -> None:
    assert await say(bot, "/privacy sideways", ADA) == ct.say("en", "privacy_usage")
    state = await say(bot, "/privacy", ADA)
    assert "Sharing of your images: allowed" in state
    assert "shown" in state


def _all_bytes(root: Path) -> bytes:
    """Every byte under the data dir: the database, its WAL and every image file."""
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


# ----- pure parts -----
def test_group_language_picks_the_catalogue_language() -> None:
    assert ct.say(ct.lang_of("zh-hans"), "groups_only") == t("telegram.groups_only", "zh")
    assert ct.say(ct.lang_of("de"), "groups_only") == "This command works in groups only."


def test_settings_change_parsing() -> None:
    change = settings_change("en", "showcase", "here", "-100555")
    assert change.showcase_channel_id == "-100555"
    assert settings_change("en", "share_outside", "OFF", "1").allow_external_share is False
    assert settings_change("en", "allowed_styles", "ink, watercolor", "1").allowed_styles == (
        "ink",
        "watercolor",
    )
    assert settings_change("en", "rate", "2.5", "1").rate_per_minute == 2.5
    assert settings_change("en", "language", "ZH", "1").language is Language.ZH
    assert "rate_burst" in settings_change("en", "burst", "none", "1").clear
    for key, value in [("showcase", "my group"), ("rate", "fast"), ("language", "fr")]:
        with pytest.raises(BadRequest):
            settings_change("en", key, value, "1")


def test_gallery_views_and_links() -> None:
    assert gallery_view([]) == "ra"
    assert gallery_view(["top", "week"]) == "tw"
    assert gallery_view(["month"]) == "rm"
    with pytest.raises(ValueError, match="yesterday"):
        gallery_view(["yesterday"])
    assert message_link("-1001234", "5") == "https://t.me/c/1234/5"
    assert message_link("@pics", "5") == "https://t.me/pics/5"
    assert message_link("-4321", "5") is None


def test_result_keyboard_in_groups_and_like_counter() -> None:
    job = Job(
        id=7,
        requester=Requester(Platform.TELEGRAM, "42", "Ada", str(GROUP), str(GROUP)),
        spec=GenerationSpec("a cat", None, seed=1, steps=4, width=1024, height=1024),
        state=JobState.POSTED,
        created_at=0.0,
    )
    markup = result_keyboard(job, showcase=True, share_outside=False, lang=Language.EN)
    rows = markup.inline_keyboard
    assert [b.callback_data for b in rows[1]] == ["tb:share:7", "tb:orig:7", "tb:del:7"]
    post = showcase_keyboard(3, 7, 12, "Remix")
    assert shown_score(post, "tb:vote:3") == 12
    relabelled = with_score(post, "tb:vote:3", 13)
    assert shown_score(relabelled, "tb:vote:3") == 13
    assert relabelled.inline_keyboard[0][1] == post.inline_keyboard[0][1]
