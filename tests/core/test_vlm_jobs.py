"""/describe and --enhance through the core (issue 14): durable jobs in the fair queue, limits
handed to the executor, text sanitised once at the core's edge, both prompts recorded, refused
when the model cannot, and a describe on the real tiny model's executor."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PIL import Image

from bot.domain import (
    VLM_FEATURES,
    DeriveKind,
    JobKind,
    JobState,
    Language,
    VlmAvailability,
    VlmFeature,
)
from bot.errors import BadRequest
from bot.service import Core
from bot.testing.executor import FakeExecutor
from bot.vlm_jobs import DESCRIBE_MAX_NEW_TOKENS, ENHANCE_MAX_NEW_TOKENS, MAX_VLM_CHARS
from tests.core.conftest import OpenCore, request, user
from tests.core.test_images import encoded
from tests.fakes import RecordingNotifier

ALICE = user("alice")


def picture() -> bytes:
    return encoded(Image.new("RGB", (96, 96), (10, 200, 40)), "PNG")


async def settle(core: Core, notifier: RecordingNotifier, count: int = 1) -> None:
    """Until ``count`` results were posted or failed, and every job's row says so."""
    for _ in range(500):
        done = len(notifier.texts) + len(notifier.delivered) + len(notifier.failures) >= count
        if done and all(
            job.state in {JobState.POSTED, JobState.FAILED} for job in await core.history(ALICE)
        ):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the jobs did not finish")


async def test_a_describe_is_a_queued_job_whose_text_is_posted_once(
    open_test_core: OpenCore, executor: FakeExecutor
) -> None:
    notifier = RecordingNotifier()
    async with open_test_core(notifiers=(notifier,)) as core:
        ticket = await core.describe(ALICE, picture(), Language.ZH)
        assert ticket.job.spec.kind is JobKind.DESCRIBE
        await settle(core, notifier)
        stored = await core.job(ticket.job.id)
    assert notifier.texts == [(ticket.job.id, "A small square picture, described in zh.")]
    assert notifier.delivered == []  # no image was made or posted
    assert stored.state is JobState.POSTED
    assert stored.text == "A small square picture, described in zh."
    assert executor.calls == []
    assert executor.vlm_calls == [(ticket.job.id, "describe", DESCRIBE_MAX_NEW_TOKENS, 60.0)]


async def test_the_model_text_is_sanitised_before_anyone_sees_it(
    open_test_core: OpenCore, executor: FakeExecutor
) -> None:
    executor.described = "@everyone **look** <|im_end|>\n# " + "word " * 1000
    notifier = RecordingNotifier()
    async with open_test_core(notifiers=(notifier,)) as core:
        ticket = await core.describe(ALICE, picture(), Language.EN)
        await settle(core, notifier)
        stored = await core.job(ticket.job.id)
    ((_, text),) = notifier.texts
    assert text == stored.text
    assert "@" not in text
    assert "**" not in text
    assert "<|" not in text
    assert len(text) <= MAX_VLM_CHARS
    assert text.startswith("\uff20everyone look")


async def test_a_describe_that_yields_nothing_fails_with_a_message(
    open_test_core: OpenCore, executor: FakeExecutor
) -> None:
    executor.described = "<|im_end|> \u200b"
    notifier = RecordingNotifier()
    async with open_test_core(notifiers=(notifier,)) as core:
        await core.describe(ALICE, picture(), Language.EN)
        await settle(core, notifier)
    assert notifier.texts == []
    assert "nothing usable" in notifier.failures[0][1]


async def test_an_unfinished_describe_survives_a_restart(
    open_test_core: OpenCore, executor: FakeExecutor
) -> None:
    executor.gate = asyncio.Event()  # held: the job never finishes before the restart
    async with open_test_core(notifiers=()) as core:
        ticket = await core.describe(ALICE, picture(), Language.EN)
    executor.gate.set()
    notifier = RecordingNotifier()
    async with open_test_core(notifiers=(notifier,)) as core:
        await settle(core, notifier)
    assert notifier.texts == [(ticket.job.id, "A small square picture, described in en.")]


async def test_enhance_makes_the_image_from_the_enhanced_prompt_and_keeps_both(
    open_test_core: OpenCore, executor: FakeExecutor
) -> None:
    notifier = RecordingNotifier()
    async with open_test_core(notifiers=(notifier,)) as core:
        ticket = await core.submit(request(ALICE, 'a shop sign "OPEN" @here --enhance'))
        await settle(core, notifier)
        stored = await core.job(ticket.job.id)
    assert stored.spec.enhance
    assert stored.spec.prompt == 'a shop sign "OPEN" @here'  # the user's own
    assert stored.text == 'a shop sign "OPEN" \uff20here, highly detailed, soft light'
    ((_, spec),) = executor.calls
    assert spec.prompt == stored.text  # the image is made from the enhanced prompt
    assert executor.vlm_calls == [(ticket.job.id, "enhance", ENHANCE_MAX_NEW_TOKENS, 60.0)]
    assert notifier.delivered_jobs[0].text == stored.text


async def test_without_enhance_the_model_is_not_asked(
    open_test_core: OpenCore, executor: FakeExecutor
) -> None:
    notifier = RecordingNotifier()
    async with open_test_core(notifiers=(notifier,)) as core:
        ticket = await core.submit(request(ALICE, "a cat"))
        await settle(core, notifier)
        stored = await core.job(ticket.job.id)
    assert executor.vlm_calls == []
    assert stored.text is None
    assert executor.calls[0][1].prompt == "a cat"


@pytest.mark.parametrize("feature", ["describe", "enhance"])
async def test_a_feature_the_model_cannot_serve_is_refused_at_intake(
    open_test_core: OpenCore, executor: FakeExecutor, feature: str
) -> None:
    executor.vlm = VlmAvailability(
        tuple(VlmFeature(f, f != feature, "no lm_head.weight") for f in VLM_FEATURES)
    )
    async with open_test_core() as core:
        ask = (
            core.describe(ALICE, picture(), Language.EN)
            if feature == "describe"
            else core.submit(request(ALICE, "a cat --enhance"))
        )
        with pytest.raises(BadRequest, match="not available"):
            await ask
        assert await core.history(ALICE) == []  # nothing was queued
    assert executor.vlm_calls == []
    assert core.vlm_availability().available(feature) is False


async def test_a_bad_file_to_describe_is_a_clear_error(open_test_core: OpenCore) -> None:
    async with open_test_core() as core:
        with pytest.raises(BadRequest):
            await core.describe(ALICE, b"not an image", Language.EN)


def test_enhance_is_a_flag_that_takes_no_value() -> None:
    from bot.commands import parse_imagine_args

    args = parse_imagine_args("--enhance a fox --n 2")
    assert args.enhance is True
    assert args.prompt == "a fox"
    assert parse_imagine_args("a fox").enhance is None


def test_a_describe_takes_one_turn_in_the_fair_queue(tmp_path: Path) -> None:
    from bot.domain import GenerationSpec

    spec = GenerationSpec("", None, 0, 4, 1024, 1024, kind=JobKind.DESCRIBE, n=1)
    assert spec.cost == 1


async def test_the_enhance_button_remakes_a_result_with_its_prompt_enhanced(
    open_test_core: OpenCore, executor: FakeExecutor
) -> None:
    notifier = RecordingNotifier()
    async with open_test_core(notifiers=(notifier,)) as core:
        parent = await core.submit(request(ALICE, "a fox --seed 5 --ar 16:9"))
        await settle(core, notifier)
        ticket = await core.derive(ALICE, parent.job.id, DeriveKind.ENHANCE)
        await settle(core, notifier, 2)
        stored = await core.job(ticket.job.id)
    assert stored.parent_job_id == parent.job.id
    assert (stored.spec.seed, stored.spec.aspect, stored.spec.enhance) == (5, "16:9", True)
    assert stored.spec.prompt == "a fox"
    assert stored.text == "a fox, highly detailed, soft light"
    assert executor.calls[1][1].prompt == stored.text


async def test_a_described_text_waiting_for_its_platform_is_posted_after_a_restart(
    open_test_core: OpenCore, executor: FakeExecutor
) -> None:
    async with open_test_core(notifiers=()) as core:  # no adapter yet: the text waits
        ticket = await core.describe(ALICE, picture(), Language.EN)
        for _ in range(500):
            if (await core.job(ticket.job.id)).state is JobState.GENERATED:
                break
            await asyncio.sleep(0.01)
    notifier = RecordingNotifier()
    async with open_test_core(notifiers=(notifier,)) as core:
        await settle(core, notifier)
    assert notifier.texts == [(ticket.job.id, "A small square picture, described in en.")]
    assert len(executor.vlm_calls) == 1  # recorded once: not described again
