"""One permission rule for every action on an existing job (issue 15, items 3 and 8).

Job ids are global, so a forged button can name any job: each scenario here is what a forged
``tb:reroll/var/rs/orig/info:<id>`` or ``/show <id>`` asks of the core.
"""

from __future__ import annotations

import pytest

from bot.access import HIDDEN_PROMPT
from bot.domain import DeriveKind, JobAction, Platform, Requester, SettingsChange
from bot.errors import NotAllowed, NotFound, RateLimited, TurbobotError
from bot.lookup import SHOW_LIMITS
from bot.service import Core
from bot.testing.executor import FakeExecutor
from tests.core.conftest import OpenCore, request, user
from tests.fakes import FakeClock, RecordingNotifier

SERVER = "g1"
ADA = user("ada", server=SERVER)
BOB = user("bob", server=SERVER)  # same server as Ada
CAROL = user("carol", server="g2")  # another server
DAN = user("dan")  # a private chat (the console: no server)
# The same user id and server id on the other platform: still someone else, somewhere else.
TELE_BOB = Requester(Platform.TELEGRAM, "bob", "Bob", "chan-bob", server_id=SERVER)
DERIVES = ("reroll", "variation", "restyle")


async def posted(core: Core, who: Requester, prompt: str) -> int:
    ticket = await core.submit(request(who, prompt, seed=11))
    await core.wait_until_idle(who.user_key)
    return ticket.job.id


async def derive(core: Core, who: Requester, job_id: int, how: str) -> str:
    """Reroll, variation or restyle, as the adapters ask for them; the new prompt."""
    if how == "reroll":
        ticket = await core.derive(who, job_id, DeriveKind.REROLL)
    elif how == "variation":
        ticket = await core.derive(who, job_id, DeriveKind.VARY)
    else:
        ticket = await core.derive(who, job_id, DeriveKind.RESTYLE, style="ink")
    return ticket.job.spec.prompt


async def share(core: Core, who: Requester, job_id: int) -> None:
    await core.update_server_settings(
        user("root", server=SERVER), SettingsChange(showcase_channel_id="sc"), is_admin=True
    )
    await core.share(who, job_id)


@pytest.mark.parametrize("stranger", [CAROL, DAN, TELE_BOB], ids=["other-server", "dm", "tg"])
@pytest.mark.parametrize("action", list(JobAction))
async def test_nobody_outside_the_server_reaches_a_job(
    open_test_core: OpenCore, stranger: Requester, action: JobAction
) -> None:
    async with open_test_core() as core:
        job_id = await posted(core, ADA, "ada's lighthouse")
        await share(core, ADA, job_id)
        with pytest.raises(NotFound):
            await core.job_for(stranger, job_id, action)
        for how in DERIVES:
            with pytest.raises(NotFound):
                await derive(core, stranger, job_id, how)
        with pytest.raises(NotFound):
            await core.derive(stranger, job_id, DeriveKind.REMIX)


async def test_a_private_chat_job_is_its_owners_alone(open_test_core: OpenCore) -> None:
    async with open_test_core() as core:
        job_id = await posted(core, DAN, "dan's secret garden")
        for who in (ADA, BOB, CAROL, user("eve")):
            for action in JobAction:
                with pytest.raises(NotFound):
                    await core.job_for(who, job_id, action)
            with pytest.raises(NotFound):
                await core.derive(who, job_id, DeriveKind.REROLL)
        for action in JobAction:
            assert (await core.job_for(DAN, job_id, action)).spec.prompt == "dan's secret garden"


async def test_same_server_members_may_see_and_derive(open_test_core: OpenCore) -> None:
    async with open_test_core() as core:
        job_id = await posted(core, ADA, "ada's lighthouse")
        for action in (JobAction.VIEW, JobAction.SHOW, JobAction.DETAILS, JobAction.DERIVE):
            assert (await core.job_for(BOB, job_id, action)).spec.prompt == "ada's lighthouse"
        for how in DERIVES:
            assert await derive(core, BOB, job_id, how) == "ada's lighthouse"
        with pytest.raises(NotAllowed, match="Only shared images"):
            await core.derive(BOB, job_id, DeriveKind.REMIX)  # remix needs a share, as before
        await share(core, ADA, job_id)
        assert (
            await core.derive(BOB, job_id, DeriveKind.REMIX)
        ).job.spec.prompt == "ada's lighthouse"


async def test_an_opted_out_owner_offers_nothing_to_others(open_test_core: OpenCore) -> None:
    """Bob's Remix was refused after Ada opted out, but Variations and Restyle worked."""
    async with open_test_core() as core:
        job_id = await posted(core, ADA, "ada's lighthouse")
        await share(core, ADA, job_id)
        await core.set_privacy(ADA, share_opt_out=True)
        for how in DERIVES:
            with pytest.raises(NotAllowed, match="keeps their images private"):
                await derive(core, BOB, job_id, how)
        with pytest.raises(NotAllowed):
            await core.derive(BOB, job_id, DeriveKind.REMIX)
        for action in (JobAction.SHOW, JobAction.DETAILS, JobAction.DERIVE, JobAction.REMIX):
            with pytest.raises(NotAllowed):
                await core.job_for(BOB, job_id, action)
        assert (await core.job_for(BOB, job_id, JobAction.VIEW)).id == job_id
        # Ada herself may do everything with her own image.
        assert await derive(core, ADA, job_id, "restyle") == "ada's lighthouse"


async def test_hidden_details_never_reach_the_deriver(
    open_test_core: OpenCore, executor: FakeExecutor
) -> None:
    """Bob's remix of Ada's hide-details image showed Ada's hidden prompt."""
    secret = "ada's secret recipe"
    bob_sees = RecordingNotifier(platform=Platform.DISCORD)
    async with open_test_core(notifiers=(bob_sees,)) as core:
        job_id = await posted(core, ADA, secret)
        await share(core, ADA, job_id)
        await core.set_privacy(ADA, hide_details=True)
        with pytest.raises(NotAllowed, match="hides the prompt"):
            await core.job_for(BOB, job_id, JobAction.DETAILS)
        shown = await core.job_for(BOB, job_id, JobAction.SHOW)
        remix = await core.derive(BOB, job_id, DeriveKind.REMIX)
        reroll = await core.derive(BOB, job_id, DeriveKind.REROLL)
        await core.wait_until_idle(BOB.user_key)
        # Deriving from his own remix does not uncover it either.
        again = await core.derive(BOB, remix.job.id, DeriveKind.RESTYLE)
        await core.wait_until_idle(BOB.user_key)
        seen = [
            shown,
            remix.job,
            reroll.job,
            again.job,
            await core.job_for(BOB, remix.job.id, JobAction.DETAILS),
            *await core.history(BOB),
            *[j for j in bob_sees.delivered_jobs if j.requester == BOB],
        ]
        own = await core.job_for(ADA, job_id, JobAction.DETAILS)
    assert len(seen) == 11  # 5 answers, 3 in history, 3 delivered
    for job in seen:
        assert job.spec.prompt == HIDDEN_PROMPT, job
        assert job.details_hidden
    assert own.spec.prompt == secret  # the owner sees her own prompt
    made = [spec.prompt for job_id_, spec in executor.calls if job_id_ != job_id]
    assert made == [secret, secret, secret]  # the engine got the real words


async def test_deleted_jobs_are_gone_for_everyone(open_test_core: OpenCore) -> None:
    async with open_test_core() as core:
        job_id = await posted(core, ADA, "ada's lighthouse")
        await core.delete(ADA, job_id)
        for who in (ADA, BOB):
            for action in JobAction:
                with pytest.raises(NotFound):
                    await core.job_for(who, job_id, action)


async def test_showing_again_is_rate_limited_and_survives_a_restart(
    open_test_core: OpenCore, clock: FakeClock
) -> None:
    """Discord /show and Telegram "Original file" were unlimited."""
    async with open_test_core() as core:
        job_id = await posted(core, ADA, "ada's lighthouse")
        for _ in range(SHOW_LIMITS.burst):
            await core.job_for(BOB, job_id, JobAction.SHOW)
        with pytest.raises(RateLimited, match="posting images again") as refused:
            await core.job_for(BOB, job_id, JobAction.SHOW)
        assert refused.value.retry_after > 0
        # Looking, deriving and the owner's own budget are not touched by it.
        await core.job_for(BOB, job_id, JobAction.VIEW)
        await core.job_for(ADA, job_id, JobAction.SHOW)
    async with open_test_core() as core:
        with pytest.raises(RateLimited):
            await core.job_for(BOB, job_id, JobAction.SHOW)
        clock.advance(60.0 / SHOW_LIMITS.rate_per_minute)
        await core.job_for(BOB, job_id, JobAction.SHOW)


@pytest.mark.parametrize("job_id", [0, -1, 10**22, 10**29, 2**63])
async def test_out_of_range_ids_are_not_found(open_test_core: OpenCore, job_id: int) -> None:
    """A 30-digit id overflowed SQLite's integers: an OverflowError, not a message."""
    async with open_test_core() as core:
        calls = [
            core.job_for(ADA, job_id, JobAction.SHOW),
            core.job(job_id),
            core.derive(ADA, job_id, DeriveKind.REROLL),
            core.derive(ADA, job_id, DeriveKind.REMIX),
            core.cancel(ADA, job_id),
            core.delete(ADA, job_id),
            core.share(ADA, job_id),
            core.vote(BOB, job_id, 1),
        ]
        for call in calls:
            with pytest.raises(TurbobotError):
                await call


async def test_a_shared_image_is_reachable_from_its_showcase_chat(open_test_core: OpenCore) -> None:
    """A Telegram showcase is a chat of its own: Remix on a showcase post comes from there."""
    in_showcase = Requester(Platform.DISCORD, "bob", "Bob", "sc", server_id="sc")
    elsewhere = Requester(Platform.TELEGRAM, "bob", "Bob", "sc", server_id="sc")
    async with open_test_core() as core:
        job_id = await posted(core, ADA, "ada's lighthouse")
        with pytest.raises(NotFound):  # not shared yet
            await core.job_for(in_showcase, job_id, JobAction.VIEW)
        await share(core, ADA, job_id)
        remix = await core.derive(in_showcase, job_id, DeriveKind.REMIX)
        with pytest.raises(NotFound):  # same chat id, other platform: another chat
            await core.derive(elsewhere, job_id, DeriveKind.REMIX)
    assert remix.job.parent_job_id == job_id
