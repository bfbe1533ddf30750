"""The iteration loop on Telegram (issue 13) end to end: real python-telegram-bot over loopback
against the fake Bot API (which enforces Telegram's limits on photos, captions and callback
data), the real core and SQLite. Grids with U/V buttons, vary / upscale / remix of one image,
remix by replying with an edited prompt, a user's photo to start from, large results as files,
and the parent chain in /show."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from bot.domain import (
    DEFAULT_IMG2IMG_STRENGTH,
    MAX_INPUT_BYTES,
    VARY_STRONG,
    VARY_SUBTLE,
    Job,
    JobKind,
    JobState,
    Platform,
    Requester,
)
from bot.testing.executor import FakeExecutor
from tests.telegram import test_community as community
from tests.telegram.conftest import Harness, running_bot
from tests.telegram.fake_botapi import (
    JSON,
    Call,
    FakeBotApi,
    callback_query,
    command_message,
    photo_message,
    sent_message,
    text_reply,
    user,
)

ADA = user(42)
BEA = community.BOB
USER_KEY = "telegram:42"
ADA_IN_CORE = Requester(Platform.TELEGRAM, "42", "Ada", "42")


def png(width: int = 300, height: int = 200) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buf, format="PNG")
    return buf.getvalue()


def jpeg(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (10, 90, 160)).save(buf, format="JPEG")
    return buf.getvalue()


def data_of(call: Call) -> list[list[str]]:
    rows = call.params["reply_markup"]["inline_keyboard"]
    return [[str(b.get("callback_data") or b.get("switch_inline_query")) for b in r] for r in rows]


def labels(call: Call) -> list[str]:
    return [b["text"] for r in call.params["reply_markup"]["inline_keyboard"] for b in r]


async def posted(bot: Harness, count: int, method: str = "sendPhoto") -> Call:
    """The ``count``-th result sent with ``method``, once the core recorded it."""
    calls = await bot.api.wait_for(method, count)
    await bot.core.wait_until_idle(USER_KEY)
    return calls[count - 1]


async def press(bot: Harness, data: str, on: Call, query_id: str, who: JSON = ADA) -> Call:
    """Press a button under the message ``on`` produced; the answerCallbackQuery it got."""
    await bot.api.push(callback_query(data, sent_message(on), from_user=who, query_id=query_id))
    answers = await bot.api.wait_for(
        "answerCallbackQuery", where=lambda c: c.params["callback_query_id"] == query_id
    )
    return answers[0]


async def grid(bot: Harness, prompt: str = "a red fox --n 4 --seed 100") -> tuple[Call, Job]:
    await bot.api.push(command_message(f"/imagine {prompt}", from_user=ADA))
    photo = await posted(bot, 1)
    return photo, await bot.core.job(1)


async def job_made_from(bot: Harness, parent: int) -> Job:
    for job in await bot.core.history(ADA_IN_CORE, limit=50):
        if job.parent_job_id == parent:
            return await bot.core.job(job.id)
    raise AssertionError(f"no job made from #{parent}")


# ----- grids -----
async def test_a_grid_is_posted_with_u_and_v_buttons(bot: Harness) -> None:
    photo, job = await grid(bot)
    assert (job.spec.n, len(job.images)) == (4, 4)
    assert data_of(photo) == [
        [f"tb:u:1:{k}" for k in range(1, 5)],
        [f"tb:v:1:{k}" for k in range(1, 5)],
        ["tb:reroll:1", "tb:del:1"],
    ]
    assert labels(photo)[:8] == ["U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4"]
    assert bot.api.refusals() == []


async def test_u3_posts_image_3_alone_with_its_own_buttons(bot: Harness) -> None:
    photo, parent = await grid(bot)
    answer = await press(bot, "tb:u:1:3", photo, "u3")
    assert "show_alert" not in answer.params  # answered, no error
    alone = await posted(bot, 2)
    picked = await job_made_from(bot, parent.id)
    assert (picked.spec.n, picked.spec.seed, picked.state) == (1, 102, JobState.POSTED)
    image_3 = bot.core._files.find(parent.images[2])
    assert image_3 is not None
    assert alone.files["photo"].data == image_3.read_bytes()
    rows = data_of(alone)
    assert rows[2] == [f"tb:vs:{picked.id}", f"tb:vx:{picked.id}"]
    assert rows[3] == [f"tb:us:{picked.id}", f"tb:uc:{picked.id}", f"tb:rp:{picked.id}"]
    assert bot.executor.calls[-1][0] == parent.id  # picking needed no GPU work


async def test_v2_varies_image_2_of_the_grid(bot: Harness) -> None:
    photo, parent = await grid(bot)
    await press(bot, "tb:v:1:2", photo, "v2")
    await posted(bot, 2)
    vary = await job_made_from(bot, parent.id)
    spec = vary.spec
    assert (spec.kind, spec.init_image, spec.strength) == (
        JobKind.VARY,
        parent.images[1],
        VARY_STRONG,
    )
    assert spec.seed != parent.spec.seed + 1  # a fresh seed


async def test_vary_subtle_and_upscale_of_one_image(bot: Harness) -> None:
    await bot.api.push(command_message("/imagine a boat --seed 5", from_user=ADA))
    photo = await posted(bot, 1)
    await press(bot, "tb:vs:1", photo, "vs")
    await posted(bot, 2)
    await press(bot, "tb:uc:1", photo, "uc")
    await posted(bot, 3)
    vary, upscale = await bot.core.job(2), await bot.core.job(3)
    assert (vary.spec.kind, vary.spec.strength, vary.parent_job_id) == (
        JobKind.VARY,
        VARY_SUBTLE,
        1,
    )
    assert (upscale.spec.kind, upscale.parent_job_id) == (JobKind.UPSCALE, 1)
    # An upscale offers no second upscale.
    assert not any(d.startswith("tb:u") for r in data_of(await posted(bot, 3)) for d in r)


async def test_a_forged_image_number_is_a_stale_button(bot: Harness) -> None:
    photo, _ = await grid(bot)
    answer = await press(bot, "tb:u:1:0", photo, "u0")
    assert "no longer works" in answer.params["text"].lower() or answer.params.get("text")
    answer = await press(bot, "tb:u:1:7", photo, "u7")  # the core: no image 7 of 4
    assert answer.params.get("show_alert") in {True, "true", "True"}


# ----- remix with an edited prompt -----
async def test_remix_asks_for_the_prompt_and_a_reply_runs_it(bot: Harness) -> None:
    await bot.api.push(command_message("/imagine a red fox in snow --seed 9", from_user=ADA))
    photo = await posted(bot, 1)
    await press(bot, "tb:rp:1", photo, "rp")
    asks = await bot.api.wait_for("sendMessage", where=lambda c: "force_reply" in str(c.params))
    ask = asks[0]
    assert ask.params["text"].startswith("✏️ #1\n")
    assert "a red fox in snow" in ask.params["text"]  # shown, to copy and edit
    assert ask.params["reply_markup"]["force_reply"] is True
    await bot.api.push(text_reply("a blue fox in snow --strength 0.5", sent_message(ask)))
    await posted(bot, 2)
    remix = await bot.core.job(2)
    spec = remix.spec
    assert (spec.kind, spec.prompt, spec.strength) == (JobKind.REMIX, "a blue fox in snow", 0.5)
    assert (remix.parent_job_id, spec.init_image) == (1, (await bot.core.job(1)).image_path)


async def test_a_reply_to_a_result_remixes_it(bot: Harness) -> None:
    await bot.api.push(command_message("/imagine a castle --seed 3", from_user=ADA))
    photo = await posted(bot, 1)
    await bot.api.push(text_reply("a castle at night", sent_message(photo)))
    await posted(bot, 2)
    remix = await bot.core.job(2)
    assert (remix.spec.kind, remix.spec.prompt) == (JobKind.REMIX, "a castle at night")
    assert (remix.spec.strength, remix.parent_job_id) == (DEFAULT_IMG2IMG_STRENGTH, 1)


async def test_a_reply_to_a_showcase_post_remixes_it_with_credit(bot: Harness) -> None:
    await community.setup_group(bot)
    original = await community.imagine(bot, "/imagine a paper crane --seed 77")
    post = await community.share(bot, original, community.ADA, "q-share")
    before = len(bot.api.calls_of("sendPhoto"))
    # Bob, in the showcase chat, answers Ada's shared picture with his own prompt.
    await bot.api.push(text_reply("a paper crane on fire", sent_message(post), from_user=BEA))
    remix = (await bot.api.wait_for("sendPhoto", before + 1))[before]
    await bot.core.wait_until_idle("telegram:43")
    job = await bot.core.job(2)
    assert (job.spec.kind, job.spec.prompt, job.parent_job_id) == (
        JobKind.REMIX,
        "a paper crane on fire",
        1,
    )
    assert remix.params["caption"].endswith("\nremix of #1 by Ada")


async def test_someone_elses_unshared_image_is_the_cores_refusal(bot: Harness) -> None:
    photo = await community.imagine(bot, "/imagine a boat")
    await bot.api.push(text_reply("a boat at night", sent_message(photo), from_user=BEA))
    refusal = (await bot.api.wait_for("sendMessage", 2))[1]
    assert refusal.params["chat_id"] == str(community.GROUP)
    assert refusal.params["text"] == "Only shared images (or your own) can be remixed."
    assert await bot.core.history(community.requester(community.BOB)) == []


async def test_a_reply_to_a_grid_asks_to_pick_an_image_first(bot: Harness) -> None:
    photo, _ = await grid(bot)
    before = len(bot.api.calls_of("sendMessage"))
    await bot.api.push(text_reply("a blue fox", sent_message(photo)))
    answer = (await bot.api.wait_for("sendMessage", before + 1))[before]
    assert "U1" in answer.params["text"]
    assert len(await bot.core.history(ADA_IN_CORE, limit=10)) == 1


async def test_a_reply_to_someone_else_or_a_status_line_is_not_a_prompt(bot: Harness) -> None:
    await bot.api.push(command_message("/imagine a boat", from_user=ADA))
    await posted(bot, 1)
    status = bot.api.calls_of("sendMessage")[0]  # "Queued #1 ..."
    people = command_message("just chatting", from_user=BEA)["message"]
    await bot.api.push(text_reply("nice", people))
    await bot.api.push(text_reply("a boat at sea", sent_message(status)))
    await bot.api.push(command_message("/queue", from_user=ADA))  # a marker: updates in order
    await bot.api.wait_for("sendMessage", 2)
    assert len(await bot.core.history(ADA_IN_CORE, limit=10)) == 1


# ----- a picture to start from -----
async def test_a_photo_with_imagine_in_its_caption_starts_from_it(bot: Harness) -> None:
    file_id = bot.api.add_file(png())
    await bot.api.push(
        photo_message(file_id, len(png()), "/imagine a red cat --strength 0.6", from_user=ADA)
    )
    await posted(bot, 1)
    job = await bot.core.job(1)
    assert (job.spec.kind, job.spec.strength, job.spec.prompt) == (
        JobKind.IMG2IMG,
        0.6,
        "a red cat",
    )
    assert bot.api.downloads == [file_id]
    # Addressed to another bot in the group: not ours to answer.
    other = bot.api.add_file(png())
    await bot.api.push(photo_message(other, len(png()), "/imagine@other_bot a dog", from_user=ADA))
    await bot.api.push(command_message("/queue", from_user=ADA))  # a marker: updates in order
    await bot.api.wait_for("sendMessage", 2)
    assert bot.api.downloads == [file_id]


async def test_imagine_in_reply_to_a_photo_or_an_image_file(bot: Harness) -> None:
    file_id = bot.api.add_file(png())
    photo = photo_message(file_id, len(png()), None, from_user=BEA)["message"]
    await bot.api.push(command_message("/imagine a cat", from_user=ADA, reply_to=photo))
    await posted(bot, 1)
    document = bot.api.add_file(png())
    doc = photo_message(document, len(png()), "look", as_document="image/png")["message"]
    await bot.api.push(command_message("/imagine a dog", from_user=ADA, reply_to=doc))
    await posted(bot, 2)
    kinds = [(await bot.core.job(i)).spec.kind for i in (1, 2)]
    assert kinds == [JobKind.IMG2IMG, JobKind.IMG2IMG]
    assert bot.api.downloads == [file_id, document]


async def test_a_file_announced_over_the_cap_is_never_downloaded(bot: Harness) -> None:
    file_id = bot.api.add_file(png(), announced=MAX_INPUT_BYTES + 1)
    await bot.api.push(photo_message(file_id, MAX_INPUT_BYTES + 1, "/imagine a cat", from_user=ADA))
    answer = (await bot.api.wait_for("sendMessage"))[0]
    assert "the limit is 20 MiB" in answer.params["text"]
    assert bot.api.downloads == []
    assert bot.api.calls_of("getFile") == []  # refused from the update's own file_size
    assert await bot.core.history(ADA_IN_CORE) == []


async def test_a_bad_file_gets_the_cores_clear_error(bot: Harness) -> None:
    broken = bot.api.add_file(b"%PDF-1.4 not a picture")
    await bot.api.push(
        photo_message(broken, 22, "/imagine a cat", from_user=ADA, as_document="image/png")
    )
    answer = (await bot.api.wait_for("sendMessage"))[0]
    assert "JPEG, PNG or WebP" in answer.params["text"]
    pdf = photo_message("pdf-1", 10, "look", as_document="application/pdf")["message"]
    await bot.api.push(command_message("/imagine a cat", from_user=ADA, reply_to=pdf))
    answer = (await bot.api.wait_for("sendMessage", 2))[1]
    assert "not a picture" in answer.params["text"]
    assert await bot.core.history(ADA_IN_CORE) == []


# ----- results over Telegram's photo limits -----
async def test_a_result_over_the_photo_limits_goes_as_a_document(
    api: FakeBotApi, tmp_path: Path
) -> None:
    executor = FakeExecutor(jpeg=jpeg(2100, 100))  # a side over 20 times the other
    async with running_bot(api, tmp_path, executor=executor) as bot:
        await bot.api.push(command_message("/imagine a long banner", from_user=ADA))
        document = await posted(bot, 1, "sendDocument")
        assert document.files["document"].data == executor.jpeg
        assert data_of(document)[0][0] == "tb:reroll:1"  # the buttons come along
        assert bot.api.calls_of("sendPhoto") == []
        assert bot.api.refusals() == []


# ----- /show lists the parent chain -----
async def test_show_lists_the_parent_chain(bot: Harness) -> None:
    photo, _ = await grid(bot)
    await press(bot, "tb:u:1:2", photo, "u2")
    alone = await posted(bot, 2)
    await press(bot, "tb:vs:2", alone, "vs")
    await posted(bot, 3)
    before = len(bot.api.calls_of("sendMessage"))
    await bot.api.push(command_message("/show 3", from_user=ADA))
    chain = (await bot.api.wait_for("sendMessage", before + 1))[before].params["text"]
    assert chain.startswith("Made from:\n")
    lines = chain.splitlines()[1:]
    assert [line.split()[1] for line in lines] == ["#2", "#1"]
