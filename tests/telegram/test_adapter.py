"""The Telegram adapter end to end: real python-telegram-bot over loopback, real core, real
SQLite; only the Bot API (a fake server) and the GPU (FakeExecutor) are stand-ins."""

from __future__ import annotations

import asyncio
import logging
import traceback
from pathlib import Path

import pytest

from adapters.telegram import TelegramAdapter
from adapters.telegram.adapter import TelegramStartError
from adapters.telegram.texts import utf16_len
from bot.derive import VARIATION_SPREAD
from bot.domain import JobState, Platform, Requester
from bot.i18n import t
from bot.service import open_core
from bot.testing.executor import FakeExecutor
from tests.fakes import FakeClock
from tests.telegram.conftest import TOKEN, Harness, make_settings, running_bot
from tests.telegram.fake_botapi import (
    BOT_USER,
    Call,
    FakeBotApi,
    callback_query,
    command_message,
    inline_query,
    sent_message,
    user,
)

ADA = user(42)
USER_KEY = "telegram:42"


def buttons(call: Call) -> list[str]:
    rows = call.params["reply_markup"]["inline_keyboard"]
    return [b.get("callback_data") or f"share:{b['switch_inline_query']}" for r in rows for b in r]


async def imagine(bot: Harness, text: str, count: int = 1) -> Call:
    """Send a command and wait for the ``count``-th photo; return that sendPhoto call."""
    await bot.api.push(command_message(text, from_user=ADA))
    photos = await bot.api.wait_for("sendPhoto", count)
    await bot.core.wait_until_idle(USER_KEY)  # the core has recorded "posted"
    return photos[count - 1]


async def reply_to(bot: Harness, text: str, from_user: dict[str, object] = ADA) -> str:
    """Send a command that is answered with a text message; return the answer."""
    before = len(bot.api.calls_of("sendMessage"))
    await bot.api.push(command_message(text, from_user=from_user))
    calls = await bot.api.wait_for("sendMessage", before + 1)
    return str(calls[before].params["text"])


async def press(bot: Harness, data: str, message: dict[str, object], query_id: str) -> Call:
    """Press a button; return the answerCallbackQuery call that answered it."""
    await bot.api.push(callback_query(data, message, from_user=ADA, query_id=query_id))
    answers = await bot.api.wait_for(
        "answerCallbackQuery", where=lambda c: c.params["callback_query_id"] == query_id
    )
    return answers[0]


async def test_start_publishes_commands_in_english_and_chinese(bot: Harness) -> None:
    calls = bot.api.calls_of("setMyCommands")
    everyone = [c for c in calls if "scope" not in c.params]
    admins = [c for c in calls if c.params.get("scope") == {"type": "all_chat_administrators"}]
    assert len(everyone) == len(admins) == 2
    english = next(c for c in everyone if "language_code" not in c.params)
    chinese = next(c for c in everyone if c.params.get("language_code") == "zh")
    names = [c["command"] for c in english.params["commands"]]
    assert names == [c["command"] for c in chinese.params["commands"]]
    assert {
        *("imagine", "style", "history", "queue", "cancel", "show", "start", "help"),
        *("gallery", "privacy", "forget"),
    } == set(names)
    assert "生成图片" in chinese.params["commands"][0]["description"]
    # Group admins also see the admin commands, in both languages.
    for menu in admins:
        admin_names = {c["command"] for c in menu.params["commands"]}
        assert admin_names == set(names) | {"settings", "block", "unblock", "audit"}
    # Every request went to the configured server, with the token only in the URL path.
    assert {c.token for c in bot.api.calls} == {TOKEN}


async def test_imagine_queues_then_posts_photo_with_buttons(
    bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    photo = await imagine(bot, "/imagine a cat on a roof --seed 7 --style ink")

    status = bot.api.calls_of("sendMessage")[0]
    assert status.params["text"].startswith("Queued #1: position 1")
    assert photo.params["chat_id"] == "42"
    assert photo.params["caption"].startswith("a cat on a roof\nink · seed 7 · 4 steps · 1:1")
    assert photo.files["photo"].data[:2] == b"\xff\xd8"  # a JPEG went up as multipart
    assert buttons(photo) == [
        "tb:reroll:1",
        "tb:var:1",
        "tb:restyle:1",
        "tb:enh:1",
        "share:#1",
        "tb:orig:1",
        "tb:del:1",
        *("tb:vs:1", "tb:vx:1", "tb:us:1", "tb:uc:1", "tb:rp:1"),
    ]
    # The status message is replaced by the result.
    deleted = await bot.api.wait_for("deleteMessage")
    assert deleted[0].params["message_id"] == str(status.result["message_id"])
    job = await bot.core.job(1)
    assert job.state is JobState.POSTED
    assert job.posted_message_id == str(photo.result["message_id"])
    assert job.posted_file_ref == photo.result["photo"][-1]["file_id"]
    # The token is in every URL, and httpx logs URLs: none of it may reach the log.
    assert caplog.records
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert TOKEN not in logged
    assert "AAE-SECRET" not in logged


async def test_group_command_addressed_to_this_bot_and_not_to_others(bot: Harness) -> None:
    group = -100123
    await bot.api.push(command_message("/imagine@other_bot a dog", from_user=ADA, chat_id=group))
    await bot.api.push(
        command_message(f"/imagine@{BOT_USER['username']} a fox", from_user=ADA, chat_id=group)
    )
    photos = await bot.api.wait_for("sendPhoto")
    await bot.core.wait_until_idle(USER_KEY)
    assert photos[0].params["chat_id"] == str(group)
    assert photos[0].params["caption"].startswith("a fox\n")
    job = await bot.core.job(1)
    assert job.requester.server_id == str(group)
    assert len(bot.executor.calls) == 1  # the command for the other bot was not ours


async def test_reroll_button_posts_a_new_photo_and_is_answered(bot: Harness) -> None:
    first = await imagine(bot, "/imagine a lighthouse --seed 1")
    answer = await press(bot, "tb:reroll:1", sent_message(first), "q-reroll")
    second = (await bot.api.wait_for("sendPhoto", 2))[1]
    await bot.core.wait_until_idle(USER_KEY)

    assert "Queued #2" in answer.params["text"]
    assert second.params["caption"].startswith("a lighthouse\n")
    assert "#2" in second.params["caption"]
    child = await bot.core.job(2)
    assert child.parent_job_id == 1
    assert child.spec.seed != 1


async def test_variation_uses_the_cores_nearby_seed(bot: Harness) -> None:
    # The core's one rule (bot.derive), not Telegram's old "+1".
    first = await imagine(bot, "/imagine a harbour --seed 41")
    await press(bot, "tb:var:1", sent_message(first), "q-var")
    await bot.api.wait_for("sendPhoto", 2)
    await bot.core.wait_until_idle(USER_KEY)
    assert 1 <= (await bot.core.job(2)).spec.seed - 41 <= VARIATION_SPREAD


async def test_original_file_sends_the_untouched_jpeg(bot: Harness) -> None:
    photo = await imagine(bot, "/imagine a mountain")
    await press(bot, "tb:orig:1", sent_message(photo), "q-orig")
    document = (await bot.api.wait_for("sendDocument"))[0]

    path = bot.core.image_file(await bot.core.job(1))
    assert path is not None
    assert document.files["document"].data == path.read_bytes()
    assert document.files["document"].filename == "turbobot-1.jpg"
    assert document.params["reply_parameters"]["message_id"] == photo.result["message_id"]


async def test_restyle_picker_then_pick_queues_the_restyled_image(bot: Harness) -> None:
    photo = await imagine(bot, "/imagine a garden --style watercolor")
    await press(bot, "tb:restyle:1", sent_message(photo), "q-restyle")
    picker = next(c for c in bot.api.calls_of("sendMessage") if "Restyle #1" in c.params["text"])
    assert "tb:rs:1:ink" in buttons(picker)

    await press(bot, "tb:rs:1:ink", sent_message(picker), "q-pick")
    second = (await bot.api.wait_for("sendPhoto", 2))[1]
    await bot.core.wait_until_idle(USER_KEY)
    assert "\nink · " in second.params["caption"]


async def test_delete_button_deletes_the_image_and_the_message(bot: Harness) -> None:
    photo = await imagine(bot, "/imagine a tiny house")
    answer = await press(bot, "tb:del:1", sent_message(photo), "q-del")
    assert answer.params["text"] == "Deleted."
    deleted = bot.api.calls_of("deleteMessage")
    assert deleted[-1].params["message_id"] == str(photo.result["message_id"])
    assert bot.core.image_file(await bot.core.job(1)) is None


async def test_someone_elses_delete_is_refused_with_an_alert(bot: Harness) -> None:
    photo = await imagine(bot, "/imagine a red boat")
    await bot.api.push(
        callback_query("tb:del:1", sent_message(photo), from_user=user(99), query_id="q-x")
    )
    answer = (await bot.api.wait_for("answerCallbackQuery"))[0]
    assert answer.params["show_alert"] == "true"
    assert "Only the person who made this image" in answer.params["text"]
    assert bot.core.image_file(await bot.core.job(1)) is not None


async def test_stale_or_foreign_buttons_are_still_answered(bot: Harness) -> None:
    photo = await imagine(bot, "/imagine a comet")
    for n, data in enumerate(["tb:reroll:999", "tb:reroll:abc", "garbage"]):
        answer = await press(bot, data, sent_message(photo), f"q-stale-{n}")
        assert answer.params.get("text")
    assert len(bot.api.calls_of("sendPhoto")) == 1


async def test_flood_429_on_send_photo_waits_and_delivers_once(bot: Harness) -> None:
    bot.api.fail_next("sendPhoto", 2, retry_after=0.2)
    await imagine(bot, "/imagine a storm over the sea")
    assert len(bot.api.calls_of("sendPhoto!429")) == 2
    assert len(bot.api.calls_of("sendPhoto")) == 1
    assert (await bot.core.job(1)).state is JobState.POSTED


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/imagine", t("telegram.imagine_usage")),
        ("/imagine --seed 5", "prompt"),
        ("/imagine \u200b\u200b", "prompt"),
        ("/imagine a cat --style nope", "Unknown style 'nope'"),
        ("/imagine a cat --steps many", "--steps must be"),
        ("/imagine " + "a" * 5000, "2000"),
    ],
)
async def test_bad_input_gets_a_clear_reply_and_queues_nothing(
    bot: Harness, command: str, expected: str
) -> None:
    answer = await reply_to(bot, command)
    assert expected.lower() in answer.lower()
    assert answer != t("telegram.something_wrong")
    assert utf16_len(answer) <= 4096
    assert await bot.core.history(Requester(Platform.TELEGRAM, "42", "Ada", "42")) == []


async def test_style_command_pages_and_sets_the_default(bot: Harness) -> None:
    text = await reply_to(bot, "/style")
    assert text.startswith("Choose your default style")
    picker = bot.api.calls_of("sendMessage")[-1]
    assert "tb:ss:ink" in buttons(picker)

    answer = await press(bot, "tb:ss:ink", sent_message(picker), "q-style")
    assert answer.params["text"] == "Your default style is now ink."
    photo = await imagine(bot, "/imagine a bridge")
    assert "\nink · " in photo.params["caption"]


async def test_style_names_in_chinese_for_chinese_users(bot: Harness) -> None:
    await bot.api.push(command_message("/style", from_user=user(42, language_code="zh-hans")))
    picker = (await bot.api.wait_for("sendMessage"))[0]
    labels = [b["text"] for r in picker.params["reply_markup"]["inline_keyboard"] for b in r]
    assert "水墨" in labels


async def test_history_queue_and_cancel(api: FakeBotApi, tmp_path: Path) -> None:
    executor = FakeExecutor(gate=asyncio.Event())
    async with running_bot(api, tmp_path, executor=executor) as bot:
        await bot.api.push(command_message("/imagine first", from_user=ADA))
        await bot.api.push(command_message("/imagine second", from_user=ADA))
        await bot.api.wait_for("sendMessage", 2)

        queue = await reply_to(bot, "/queue")
        assert "#1 — running now" in queue
        assert "#2 — position 1" in queue
        assert buttons(bot.api.calls_of("sendMessage")[-1]) == ["tb:cancel:2"]

        assert await reply_to(bot, "/cancel") == "Cancelled #2."
        assert "only waiting jobs" in await reply_to(bot, "/cancel 1")
        executor.gate.set()  # type: ignore[union-attr]
        await bot.api.wait_for("sendPhoto")
        await bot.core.wait_until_idle(USER_KEY)

        history = await reply_to(bot, "/history")
        assert "#2 · cancelled" in history
        assert "#1 · posted" in history


async def test_progress_edits_are_throttled_by_the_injected_clock(
    api: FakeBotApi, tmp_path: Path
) -> None:
    executor = FakeExecutor(gate=asyncio.Event())
    clock = FakeClock()
    async with running_bot(api, tmp_path, executor=executor, clock=clock) as bot:
        await bot.api.push(command_message("/imagine slow clouds", from_user=ADA))
        await bot.api.wait_for("sendMessage")
        clock.advance(2.0)  # past the 1.5 s interval once; all four steps arrive at this time
        executor.gate.set()  # type: ignore[union-attr]
        await bot.api.wait_for("sendPhoto")
        await bot.core.wait_until_idle(USER_KEY)

    # The core coalesces steps that arrive together; the adapter edits at most once per 1.5 s.
    edits = [c.params["text"] for c in api.calls_of("editMessageText")]
    assert len(edits) == 1
    assert edits[0].startswith("Generating #1: step ")


async def test_failure_replaces_the_status_message(api: FakeBotApi, tmp_path: Path) -> None:
    executor = FakeExecutor(fail_prompts={"doomed"})
    async with running_bot(api, tmp_path, executor=executor) as bot:
        await bot.api.push(command_message("/imagine doomed", from_user=ADA))
        await bot.core.wait_until_idle(USER_KEY)
        await bot.api.wait_for("sendMessage")
    said = [c.params["text"] for c in api.calls if c.method in {"sendMessage", "editMessageText"}]
    assert any("The fake GPU refused this prompt." in t for t in said)
    assert api.calls_of("sendPhoto") == []


async def test_inline_query_offers_cached_photos_of_the_user_only(bot: Harness) -> None:
    photo = await imagine(bot, "/imagine a Red Fox in snow")
    await imagine(bot, "/imagine a blue whale", count=2)
    file_id = photo.result["photo"][-1]["file_id"]

    await bot.api.push(inline_query("fox", from_user=ADA, query_id="iq-fox"))
    await bot.api.push(inline_query("#1", from_user=ADA, query_id="iq-id"))
    await bot.api.push(inline_query("fox", from_user=user(99), query_id="iq-other"))
    await bot.api.push(inline_query("#1", from_user=user(99), query_id="iq-other-id"))
    answers = await bot.api.wait_for("answerInlineQuery", 4)
    by_id = {a.params["inline_query_id"]: a.params["results"] for a in answers}

    for query_id in ("iq-fox", "iq-id"):
        assert [(r["type"], r["photo_file_id"]) for r in by_id[query_id]] == [("photo", file_id)]
    assert by_id["iq-other"] == []
    assert by_id["iq-other-id"] == []  # somebody else's image, asked for by its number
    assert bot.api.calls_of("sendPhoto")[2:] == []  # shared by file_id: no re-upload


async def test_buttons_and_inline_sharing_work_after_a_restart(
    api: FakeBotApi, tmp_path: Path
) -> None:
    async with running_bot(api, tmp_path) as bot:
        photo = await imagine(bot, "/imagine an old mill")
    file_id = photo.result["photo"][-1]["file_id"]

    async with running_bot(api, tmp_path) as bot:
        await press(bot, "tb:reroll:1", sent_message(photo), "q-after")
        await bot.api.wait_for("sendPhoto", 2)
        await bot.core.wait_until_idle(USER_KEY)
        await bot.api.push(inline_query("mill", from_user=ADA, query_id="iq-after"))
        answer = (await bot.api.wait_for("answerInlineQuery"))[0]
    assert [r["photo_file_id"] for r in answer.params["results"]] == [
        api.calls_of("sendPhoto")[1].result["photo"][-1]["file_id"],
        file_id,
    ]


async def test_after_stop_intake_commands_get_a_polite_refusal(bot: Harness) -> None:
    await bot.adapter.stop_intake()
    assert await reply_to(bot, "/imagine a cat") == t("telegram.intake_closed")
    assert bot.executor.calls == []


async def test_a_rejected_token_fails_start_without_leaking_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakeBotApi(valid_token="999:another-token") as api:
        settings = make_settings(tmp_path, api.base_url)
        async with open_core(settings, FakeExecutor(), FakeClock()) as core:
            adapter = TelegramAdapter(core, settings)
            with pytest.raises(TelegramStartError) as caught:
                await adapter.start()
            await adapter.aclose()  # idempotent after a failed start
    shown = "".join(traceback.format_exception(caught.value))
    assert "rejected TELEGRAM_TOKEN" in shown
    assert TOKEN not in shown
    assert TOKEN not in "\n".join(r.getMessage() for r in caplog.records)
