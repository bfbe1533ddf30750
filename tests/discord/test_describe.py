"""/describe, the "Describe" context menu, their result's buttons and ✨ Enhance, over the fake
Discord server with the real adapter and core (issue 14). The fake executor's VLM writes a known
sentence, so the tests check the path: who is asked, what is posted, what is queued."""

from __future__ import annotations

from io import BytesIO

from PIL import Image

from bot.domain import Platform
from tests.discord.conftest import Bot
from tests.discord.fake_discord import ALICE, BOB, FakeDiscord

DESCRIBED = "A small square picture, described in {lang}."


def png() -> bytes:
    buf = BytesIO()
    Image.new("RGB", (96, 96), (20, 140, 220)).save(buf, format="PNG")
    return buf.getvalue()


async def _idle(bot: Bot) -> None:
    for user in (ALICE, BOB):
        await bot.core.wait_until_idle(f"{Platform.DISCORD}:{user}")


async def _described(fake: FakeDiscord, bot: Bot, **kw: object) -> dict:  # type: ignore[type-arg]
    attachment = fake.upload("cat.png", png())
    log = await fake.slash("describe", {"image": attachment}, **kw)  # type: ignore[arg-type]
    await fake.wait_for(lambda: _posts(fake))
    await _idle(bot)
    assert log.callbacks[0]["type"] == 5  # acknowledged first
    return _posts(fake)[-1]


def _posts(fake: FakeDiscord) -> list[dict]:  # type: ignore[type-arg]
    """The describe results posted in the channel (not the ephemeral replies)."""
    return [
        m
        for m in fake.channel_messages()
        if "webhook_id" not in m and m["content"].startswith("#") and "·" in m["content"]
    ]


async def test_describe_posts_the_prompt_as_text_with_two_buttons(
    fake: FakeDiscord, bot: Bot
) -> None:
    message = await _described(fake, bot)
    ((job_id, _kind, tokens, _limit),) = bot.executor.vlm_calls
    assert message["content"] == f"#{job_id} · A prompt for your picture:\n" + DESCRIBED.format(
        lang="en"
    )
    assert message["attachments"] == []
    assert message["allowed_mentions"]["parse"] == []
    ids = [c["custom_id"] for row in message["components"] for c in row["components"]]
    assert ids == [f"tb:desc:imagine:{job_id}", f"tb:desc:edit:{job_id}"]
    assert tokens == 200
    assert bot.executor.calls == []  # no image was made


async def test_describe_answers_in_chinese_for_a_chinese_client(
    fake: FakeDiscord, bot: Bot
) -> None:
    message = await _described(fake, bot, locale="zh-CN")
    assert DESCRIBED.format(lang="zh") in message["content"]
    assert "这张图片的提示词" in message["content"]


async def test_imagine_this_makes_an_image_of_the_described_prompt(
    fake: FakeDiscord, bot: Bot
) -> None:
    message = await _described(fake, bot)
    ((job_id, *_),) = bot.executor.vlm_calls
    click = await fake.click(int(message["id"]), f"tb:desc:imagine:{job_id}", user=BOB)
    await fake.answered(click)
    await fake.wait_for(lambda: len(bot.executor.calls) == 1)
    await _idle(bot)
    assert bot.executor.calls[0][1].prompt == DESCRIBED.format(lang="en")
    assert fake.posted_with_files()[-1]["content"].startswith(f"<@{BOB}>")


async def test_edit_first_opens_a_modal_and_imagines_the_edited_prompt(
    fake: FakeDiscord, bot: Bot
) -> None:
    message = await _described(fake, bot)
    ((job_id, *_),) = bot.executor.vlm_calls
    click = await fake.click(int(message["id"]), f"tb:desc:edit:{job_id}")
    await fake.answered(click)
    assert click.callbacks[0]["type"] == 9  # the modal is the answer to the click
    (row,) = click.callbacks[0]["data"]["components"]
    (box,) = row["components"]
    assert box["value"] == DESCRIBED.format(lang="en")
    submitted = await fake.submit_modal(click, {"0": "a blue square, oil painting"})
    await fake.answered(submitted)
    await fake.wait_for(lambda: len(bot.executor.calls) == 1)
    await _idle(bot)
    assert bot.executor.calls[0][1].prompt == "a blue square, oil painting"


async def test_the_context_menu_describes_a_posted_image(fake: FakeDiscord, bot: Bot) -> None:
    await fake.slash("imagine", {"prompt": "a lighthouse"})
    await fake.wait_for(lambda: len(fake.posted_with_files()) == 1)
    await _idle(bot)
    posted = fake.posted_with_files()[0]
    log = await fake.message_command("Describe", int(posted["id"]))
    await fake.answered(log)
    await fake.wait_for(lambda: len(bot.executor.vlm_calls) == 1)
    await _idle(bot)
    assert bot.executor.vlm_calls[0][1] == "describe"
    assert _posts(fake)[-1]["content"].startswith("#2 · A prompt")


async def test_the_context_menu_on_a_message_without_a_picture_says_so(
    fake: FakeDiscord, bot: Bot
) -> None:
    message = await _described(fake, bot)  # a text-only message
    log = await fake.message_command("Describe", int(message["id"]))
    await fake.wait_for(lambda: any("no picture" in t for t in log.texts()))
    assert len(bot.executor.vlm_calls) == 1  # nothing new was queued


async def test_the_enhance_button_remakes_the_image_from_an_enhanced_prompt(
    fake: FakeDiscord, bot: Bot
) -> None:
    await fake.slash("imagine", {"prompt": "a fox", "seed": 9})
    await fake.wait_for(lambda: len(fake.posted_with_files()) == 1)
    await _idle(bot)
    first = fake.posted_with_files()[0]
    job_id = bot.executor.calls[0][0]
    click = await fake.click(int(first["id"]), f"tb:enhance:{job_id}")
    await fake.answered(click)
    await fake.wait_for(lambda: len(bot.executor.calls) == 2)
    await _idle(bot)
    spec = bot.executor.calls[1][1]
    assert spec.prompt == "a fox, highly detailed, soft light"
    assert spec.seed == 9
    job = await bot.core.job(bot.executor.calls[1][0])
    assert (job.spec.prompt, job.text) == ("a fox", spec.prompt)


async def test_describe_and_the_menu_are_localised(fake: FakeDiscord, bot: Bot) -> None:
    commands = {c["name"]: c for c in fake.commands[None]}
    assert commands["describe"]["description_localizations"]["zh-CN"]
    assert commands["Describe"]["type"] == 3
    assert commands["Describe"]["name_localizations"] == {"zh-CN": "描述图片"}


async def test_help_says_which_vlm_features_are_available(fake: FakeDiscord, bot: Bot) -> None:
    log = await fake.slash("help")
    await fake.wait_for(lambda: any("available" in t for t in log.texts()))
    text = log.texts()[-1]
    assert text.count("✅") == 3
