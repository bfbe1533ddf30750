"""/describe and ✨ Enhance on Telegram over the fake Bot API with the real adapter and core
(issue 14): a captioned photo, /describe answering a photo, the result's buttons (imagine at
once, edit first through a ForceReply) and the Enhance button on a result."""

from __future__ import annotations

import copy
from io import BytesIO

from PIL import Image

from tests.telegram.conftest import Harness
from tests.telegram.fake_botapi import (
    BOT_USER,
    Call,
    callback_query,
    command_message,
    sent_message,
    user,
)

ADA = user(42)
USER_KEY = "telegram:42"
DESCRIBED = "A small square picture, described in en."


def png() -> bytes:
    buf = BytesIO()
    Image.new("RGB", (96, 96), (20, 140, 220)).save(buf, format="PNG")
    return buf.getvalue()


def photo_message(bot: Harness, caption: str | None = None) -> dict[str, object]:
    """A photo Ada sends (with ``caption`` and its command entity, as Telegram marks it)."""
    message = command_message("x", from_user=ADA)["message"]
    del message["text"]
    message["photo"] = bot.api.user_photo(png())
    if caption is not None:
        message["caption"] = caption
        command = caption.split()[0]
        message["caption_entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
    return message


async def described(bot: Harness, count: int = 1) -> Call:
    """The ``count``-th describe result (a sendMessage with the two buttons)."""

    def is_result(c: Call) -> bool:
        return "A prompt for your picture" in str(c.params.get("text", ""))

    calls = await bot.api.wait_for("sendMessage", count, where=is_result)
    await bot.core.wait_until_idle(USER_KEY)
    return calls[count - 1]


def buttons(call: Call) -> list[str]:
    rows = call.params["reply_markup"]["inline_keyboard"]
    return [b.get("callback_data") for r in rows for b in r]


async def test_a_photo_captioned_describe_gets_a_prompt_with_two_buttons(bot: Harness) -> None:
    await bot.api.push({"message": photo_message(bot, "/describe")})
    result = await described(bot)
    ((job_id, kind, tokens, _),) = bot.executor.vlm_calls
    assert (kind, tokens) == ("describe", 200)
    assert result.params["text"] == f"#{job_id} · A prompt for your picture:\n{DESCRIBED}"
    assert "parse_mode" not in result.params  # the model's text is never markup
    assert buttons(result) == [f"tb:dimg:{job_id}", f"tb:dedit:{job_id}"]
    assert bot.executor.calls == []


async def test_describe_as_a_reply_to_a_photo(bot: Harness) -> None:
    photo = photo_message(bot)
    await bot.api.push(command_message("/describe", from_user=ADA, reply_to=photo))
    await described(bot)
    assert len(bot.executor.vlm_calls) == 1


async def test_describe_without_a_photo_says_how(bot: Harness) -> None:
    await bot.api.push(command_message("/describe", from_user=ADA))
    calls = await bot.api.wait_for("sendMessage")
    assert "/describe" in calls[0].params["text"]
    assert bot.executor.vlm_calls == []


async def test_imagine_this_and_edit_first(bot: Harness) -> None:
    await bot.api.push({"message": photo_message(bot, "/describe")})
    result = sent_message(await described(bot))
    job_id = bot.executor.vlm_calls[0][0]
    await bot.api.push(callback_query(f"tb:dimg:{job_id}", result, from_user=ADA, query_id="q1"))
    await bot.api.wait_for("sendPhoto")
    await bot.core.wait_until_idle(USER_KEY)
    assert bot.executor.calls[0][1].prompt == DESCRIBED

    await bot.api.push(callback_query(f"tb:dedit:{job_id}", result, from_user=ADA, query_id="q2"))
    (asked,) = await bot.api.wait_for(
        "sendMessage", where=lambda c: "force_reply" in str(c.params.get("reply_markup"))
    )
    assert asked.params["text"].startswith(f"✏️ #{job_id} ")
    assert DESCRIBED in asked.params["text"]
    answer = command_message("a blue square, oil painting", from_user=ADA)
    answer["message"]["reply_to_message"] = copy.deepcopy(sent_message(asked))
    assert answer["message"]["reply_to_message"]["from"] == BOT_USER
    await bot.api.push(answer)
    await bot.api.wait_for("sendPhoto", 2)
    await bot.core.wait_until_idle(USER_KEY)
    assert bot.executor.calls[1][1].prompt == "a blue square, oil painting"


async def test_a_reply_to_another_message_is_left_alone(bot: Harness) -> None:
    other = command_message("hello", from_user=ADA)["message"]
    answer = command_message("a reply", from_user=ADA)
    answer["message"]["reply_to_message"] = other
    await bot.api.push(answer)
    await bot.api.push(command_message("/help", from_user=ADA))
    calls = await bot.api.wait_for("sendMessage")
    assert len(calls) == 1  # only /help was answered
    assert calls[0].params["text"].count("✅") == 3  # /help lists the VLM features
    assert bot.executor.calls == []


async def test_the_enhance_button_remakes_the_image_from_an_enhanced_prompt(
    bot: Harness,
) -> None:
    await bot.api.push(command_message("/imagine a fox --seed 9", from_user=ADA))
    (first,) = await bot.api.wait_for("sendPhoto")
    await bot.core.wait_until_idle(USER_KEY)
    await bot.api.push(callback_query("tb:enh:1", sent_message(first), from_user=ADA))
    await bot.api.wait_for("sendPhoto", 2)
    await bot.core.wait_until_idle(USER_KEY)
    spec = bot.executor.calls[1][1]
    assert (spec.prompt, spec.seed) == ("a fox, highly detailed, soft light", 9)
    job = await bot.core.job(bot.executor.calls[1][0])
    assert job.spec.prompt == "a fox"
