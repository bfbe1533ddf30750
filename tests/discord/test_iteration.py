"""The iteration loop on Discord (issue 13), real adapter and core over the loopback fake.

A grid with U1-U4 / V1-V4, one image's vary / upscale / remix buttons, the remix form, an
image as input (the ``image`` option and the "Imagine from image" message menu) and the
lineage /show lists. Every rule is the core's; these check the translation both ways.
"""

from __future__ import annotations

import io
from dataclasses import replace

from PIL import Image

from adapters.discord.views import ROW_SIZE
from bot.domain import (
    MAX_INPUT_BYTES,
    UPSCALE_CREATIVE,
    VARY_STRONG,
    VARY_SUBTLE,
    JobKind,
    Platform,
)
from tests.discord.conftest import Bot
from tests.discord.fake_discord import (
    ALICE,
    BOB,
    CUSTOM_ID_LIMIT,
    JSON,
    FakeDiscord,
    InteractionLog,
)

MODAL = 9


def _rows(message: JSON) -> list[list[str]]:
    return [[c["custom_id"] for c in row["components"]] for row in message["components"]]


def _labels(message: JSON) -> list[str]:
    return [c["label"] for row in message["components"] for c in row["components"]]


def _png(size: tuple[int, int] = (96, 64), colour: tuple[int, int, int] = (10, 120, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


async def _idle(bot: Bot) -> None:
    for user in (ALICE, BOB):
        await bot.core.wait_until_idle(f"{Platform.DISCORD}:{user}")


async def _result_of(fake: FakeDiscord, bot: Bot, job_id: int) -> JSON:
    """The channel post of job ``job_id`` (with its image)."""

    def post() -> JSON | None:
        return next((m for m in fake.posted_with_files() if f"#{job_id} ·" in m["content"]), None)

    await fake.wait_for(lambda: post() is not None)
    await _idle(bot)
    found = post()
    assert found is not None
    return found


async def _queued_job(fake: FakeDiscord, log: InteractionLog) -> int:
    """The job id an ephemeral "#N · Queued ..." (or "#N · Done") reply names."""
    await fake.wait_for(lambda: any(t.startswith("#") for t in log.texts()))
    text = next(t for t in log.texts() if t.startswith("#"))
    return int(text[1:].split(" ", 1)[0])


async def _imagine(fake: FakeDiscord, bot: Bot, **options: object) -> tuple[int, JSON]:
    log = await fake.slash("imagine", {"prompt": "a lighthouse at dusk", **options})
    job_id = await _queued_job(fake, log)
    return job_id, await _result_of(fake, bot, job_id)


async def _answer(fake: FakeDiscord, log: InteractionLog, containing: str) -> str:
    await fake.wait_for(lambda: any(containing in t for t in log.texts()))
    return next(t for t in log.texts() if containing in t)


# ----------------------------------------------------------------------- grid, U and V


async def test_a_grid_gets_u_and_v_buttons_and_u_posts_that_image_alone(
    fake: FakeDiscord, bot: Bot
) -> None:
    job_id, grid = await _imagine(fake, bot, n=4)

    rows = _rows(grid)
    assert rows[0] == [f"tb:it:u:{job_id}:{k}" for k in range(1, 5)]
    assert rows[1] == [f"tb:it:v:{job_id}:{k}" for k in range(1, 5)]
    assert rows[2] == [f"tb:{a}:{job_id}" for a in ("reroll", "restyle", "share", "delete", "info")]
    assert _labels(grid)[:8] == [*(f"U{k}" for k in range(1, 5)), *(f"V{k}" for k in range(1, 5))]
    assert len(rows) <= ROW_SIZE
    assert all(len(r) <= ROW_SIZE for r in rows)
    assert all(len(i) <= CUSTOM_ID_LIMIT for r in rows for i in r)
    assert not fake.refused

    parent = await bot.core.job(job_id)
    third = bot.core.image_file(replace(parent, images=(), image_path=parent.images[2]))
    assert third is not None
    expected = third.read_bytes()

    pressed = await fake.click(int(grid["id"]), f"tb:it:u:{job_id}:3")
    picked_id = await _queued_job(fake, pressed)
    alone = await _result_of(fake, bot, picked_id)

    assert len(bot.executor.calls) == 1  # a pick is no GPU work
    assert alone["_files"] == [expected]  # image 3, full size, as it was made
    picked = await bot.core.job(picked_id)
    assert (picked.parent_job_id, picked.spec.n) == (job_id, 1)
    # Its own buttons: vary and upscale of this one image, remix, and the usual ones.
    assert _rows(alone)[0] == [
        *(f"tb:it:{op}:{picked_id}:1" for op in ("vs", "vx", "us", "uc")),
        f"tb:remix:{picked_id}",
    ]
    assert _rows(alone)[1] == [
        f"tb:{a}:{picked_id}" for a in ("reroll", "restyle", "share", "delete", "info")
    ]


async def test_v_k_is_a_strong_variation_of_image_k(fake: FakeDiscord, bot: Bot) -> None:
    job_id, grid = await _imagine(fake, bot, n=2)
    parent = await bot.core.job(job_id)

    pressed = await fake.click(int(grid["id"]), f"tb:it:v:{job_id}:2")
    varied_id = await _queued_job(fake, pressed)
    await _result_of(fake, bot, varied_id)

    called_id, spec = bot.executor.calls[-1]
    assert called_id == varied_id
    assert (spec.kind, spec.strength, spec.n) == (JobKind.VARY, VARY_STRONG, 1)
    assert spec.init_image == parent.images[1]
    assert (await bot.core.job(varied_id)).parent_job_id == job_id


async def test_zh_client_sees_chinese_iteration_buttons(fake: FakeDiscord, bot: Bot) -> None:
    log = await fake.slash("imagine", {"prompt": "a cat"}, locale="zh-CN")
    job_id = await _queued_job(fake, log)
    post = await _result_of(fake, bot, job_id)
    expected = ["微调变体", "大幅变体", "放大（细微）", "放大（创意）", "混搭"]  # noqa: RUF001
    assert _labels(post)[:5] == expected


async def test_one_image_varies_subtly_and_upscales_creatively(fake: FakeDiscord, bot: Bot) -> None:
    job_id, post = await _imagine(fake, bot)
    parent = await bot.core.job(job_id)

    subtle = await fake.click(int(post["id"]), f"tb:it:vs:{job_id}:1")
    await _result_of(fake, bot, await _queued_job(fake, subtle))
    _, spec = bot.executor.calls[-1]
    assert (spec.kind, spec.strength, spec.init_image) == (
        JobKind.VARY,
        VARY_SUBTLE,
        parent.image_path,
    )

    upscale = await fake.click(int(post["id"]), f"tb:it:uc:{job_id}:1")
    await _result_of(fake, bot, await _queued_job(fake, upscale))
    _, spec = bot.executor.calls[-1]
    assert (spec.kind, spec.strength) == (JobKind.UPSCALE, UPSCALE_CREATIVE)


async def test_an_image_button_on_a_job_without_that_image_is_refused_clearly(
    fake: FakeDiscord, bot: Bot
) -> None:
    job_id, grid = await _imagine(fake, bot, n=2)
    # A hand-made id for image 4 of a two-image job (the template allows 1-9).
    grid["components"][0]["components"][0]["custom_id"] = f"tb:it:u:{job_id}:4"
    pressed = await fake.click(int(grid["id"]), f"tb:it:u:{job_id}:4")
    text = await _answer(fake, pressed, "no image 4")
    assert "pick one from 1 to 2" in text
    assert len(bot.executor.calls) == 1


# ----------------------------------------------------------------------- remix form


async def test_remix_opens_a_prefilled_form_and_runs_the_edited_prompt(
    fake: FakeDiscord, bot: Bot
) -> None:
    job_id, post = await _imagine(fake, bot)
    parent = await bot.core.job(job_id)

    opened = await fake.click(int(post["id"]), f"tb:remix:{job_id}")
    await fake.answered(opened)
    assert opened.callback_type == MODAL, opened.texts()  # the form is the reply, no deferral
    assert opened.modal is not None
    inputs = [row["components"][0] for row in opened.modal["components"]]
    assert inputs[0]["value"] == "a lighthouse at dusk"
    assert inputs[0]["max_length"] == 4000
    assert inputs[1]["required"] is False
    assert not fake.refused

    sent = await fake.submit_modal(opened, {"0": "a lighthouse at dawn", "1": "0.4"})
    remix_id = await _queued_job(fake, sent)
    await _result_of(fake, bot, remix_id)

    _, spec = bot.executor.calls[-1]
    assert (spec.prompt, spec.kind, spec.strength) == ("a lighthouse at dawn", JobKind.REMIX, 0.4)
    assert spec.init_image == parent.image_path
    assert (await bot.core.job(remix_id)).parent_job_id == job_id


async def test_remix_form_with_a_bad_strength_says_why_and_queues_nothing(
    fake: FakeDiscord, bot: Bot
) -> None:
    job_id, post = await _imagine(fake, bot)
    opened = await fake.click(int(post["id"]), f"tb:remix:{job_id}")
    await fake.answered(opened)

    words = await fake.submit_modal(opened, {"1": "lots"})
    assert "is not a number" in await _answer(fake, words, "lots")
    again = await fake.click(int(post["id"]), f"tb:remix:{job_id}")  # a form closes on submit
    await fake.answered(again)
    too_far = await fake.submit_modal(again, {"1": "3"})
    assert "from 0.05 to 1" in await _answer(fake, too_far, "Strength")  # the core's check
    await _idle(bot)
    assert len(bot.executor.calls) == 1


# ----------------------------------------------------------------------- image input


async def test_imagine_with_an_image_starts_from_it(fake: FakeDiscord, bot: Bot) -> None:
    upload = fake.upload("cat.png", _png())
    job_id, _ = await _imagine(fake, bot, image=upload, strength=0.5)

    _, spec = bot.executor.calls[-1]
    assert (spec.kind, spec.strength) == (JobKind.IMG2IMG, 0.5)
    assert spec.init_image is not None
    assert len(fake.downloads) == 1
    job = await bot.core.job(job_id)
    assert job.spec.init_image == spec.init_image


async def test_a_bad_file_gets_a_clear_message_and_nothing_is_queued(
    fake: FakeDiscord, bot: Bot
) -> None:
    text = fake.upload("notes.png", b"these are my notes, not a picture")
    log = await fake.slash("imagine", {"prompt": "a cat", "image": text})
    assert "JPEG" in await _answer(fake, log, "PNG")
    assert fake.downloads  # the core looked at the bytes

    huge = fake.upload("huge.png", _png(), size=MAX_INPUT_BYTES + 1)
    before = len(fake.downloads)
    log = await fake.slash("imagine", {"prompt": "a cat", "image": huge})
    assert "limit is 20 MiB" in await _answer(fake, log, "MiB")
    assert len(fake.downloads) == before  # refused by its size, never downloaded
    await _idle(bot)
    assert bot.executor.calls == []


async def test_imagine_from_image_menu_opens_a_form_and_starts_from_the_picture(
    fake: FakeDiscord, bot: Bot
) -> None:
    menus = [c for cmds in fake.commands.values() for c in cmds if c["type"] == 3]
    (menu,) = [c for c in menus if c["name"] == "Imagine from image"]  # beside "Describe"
    assert menu["name_localizations"] == {"zh-CN": "以图生图"}

    posted = fake.user_message("a red fox in snow", [fake.upload("fox.png", _png())], user=BOB)
    opened = await fake.message_command(menu["name"], int(posted["id"]))
    await fake.answered(opened)
    assert opened.callback_type == MODAL
    assert opened.modal is not None
    assert opened.modal["components"][0]["components"][0]["value"] == "a red fox in snow"
    assert not fake.downloads  # nothing downloaded before the user submits

    sent = await fake.submit_modal(opened, {"1": "0.7"})
    job_id = await _queued_job(fake, sent)
    await _result_of(fake, bot, job_id)
    _, spec = bot.executor.calls[-1]
    assert (spec.prompt, spec.kind, spec.strength) == ("a red fox in snow", JobKind.IMG2IMG, 0.7)


async def test_imagine_from_image_on_a_message_without_one_says_so(
    fake: FakeDiscord, bot: Bot
) -> None:
    posted = fake.user_message("just words", [fake.upload("notes.txt", b"hello")])
    log = await fake.message_command("Imagine from image", int(posted["id"]), locale="zh-CN")
    assert "没有可用的图片" in await _answer(fake, log, "JPEG")


# ----------------------------------------------------------------------- lineage


async def test_show_lists_the_parent_chain(fake: FakeDiscord, bot: Bot) -> None:
    grid_id, grid = await _imagine(fake, bot, n=2)
    pressed = await fake.click(int(grid["id"]), f"tb:it:u:{grid_id}:2")
    picked_id = await _queued_job(fake, pressed)
    alone = await _result_of(fake, bot, picked_id)
    varied = await fake.click(int(alone["id"]), f"tb:it:vs:{picked_id}:1")
    varied_id = await _queued_job(fake, varied)
    await _result_of(fake, bot, varied_id)

    shown = await fake.slash("show", {"job": varied_id})
    text = await _answer(fake, shown, "Made from:")
    lines = text.splitlines()
    start = lines.index("Made from:")
    assert lines[start + 1].startswith(f"↳ #{picked_id} · ")
    assert lines[start + 2] == f"↳ #{grid_id} · from text · a lighthouse at dusk"


# ----------------------------------------------------------------------- upscale over the limit


async def test_an_upscale_over_the_upload_limit_is_explained_not_lost(
    fake: FakeDiscord, bot: Bot
) -> None:
    job_id, post = await _imagine(fake, bot)
    # The upscale comes back larger than the server's 10 MiB per file (the fake guild's tier).
    bot.executor.jpeg = b"\xff\xd8" + b"\0" * (10 * 2**20)
    pressed = await fake.click(int(post["id"]), f"tb:it:us:{job_id}:1")
    upscale_id = await _queued_job(fake, pressed)

    def notice() -> JSON | None:
        return next(
            (m for m in fake.channel_messages() if f"image #{upscale_id} is" in m["content"]), None
        )

    await fake.wait_for(lambda: notice() is not None)
    message = notice()
    assert message is not None
    assert "over the 10 MiB upload limit" in message["content"]
    assert not message["attachments"]  # nothing Discord would refuse was sent
    assert f"tb:info:{upscale_id}" in [i for row in _rows(message) for i in row]
    assert not fake.refused
