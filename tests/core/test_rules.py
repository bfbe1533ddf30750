"""Rules that used to live in the adapters, now decided once in the core (issue 16).

Each was written before the rule moved: derive kinds and their seed rule, sharing outside a
server, vote toggling with "my vote", and the remix credit.
"""

from __future__ import annotations

import random

import pytest

from bot.derive import VARIATION_SPREAD, derived_seed
from bot.domain import MAX_SEED, Credit, DeriveKind, JobAction, SettingsChange
from bot.errors import NotAllowed, NotFound
from bot.service import Core
from tests.core.conftest import OpenCore, request, user

SERVER = "g1"
ADA = user("ada", server=SERVER)
BOB = user("bob", server=SERVER)
ROOT = user("root", server=SERVER)


async def posted(core: Core, prompt: str = "a lighthouse", seed: int = 11) -> int:
    ticket = await core.submit(request(ADA, prompt, seed=seed, style="ink"))
    await core.wait_until_idle(ADA.user_key)
    return ticket.job.id


async def share(core: Core, job_id: int) -> int:
    await core.update_server_settings(ROOT, SettingsChange(showcase_channel_id="sc"), is_admin=True)
    return (await core.share(ADA, job_id)).share_id


@pytest.mark.parametrize("parent", [0, 11, MAX_SEED - 3, MAX_SEED])
def test_the_seed_rule_of_each_kind(parent: int) -> None:
    rng = random.Random(5)
    assert derived_seed(DeriveKind.RESTYLE, parent, rng) == parent
    assert derived_seed(DeriveKind.REMIX, parent, rng) == parent
    for _ in range(200):
        step = (derived_seed(DeriveKind.VARY, parent, rng) - parent) % (MAX_SEED + 1)
        assert 1 <= step <= VARIATION_SPREAD
    rerolls = {derived_seed(DeriveKind.REROLL, parent, rng) for _ in range(20)}
    assert len(rerolls) > 1
    assert all(0 <= s <= MAX_SEED for s in rerolls)


async def test_derive_kinds_apply_the_seed_rule_in_the_core(open_test_core: OpenCore) -> None:
    async with open_test_core() as core:
        job_id = await posted(core, seed=1000)
        vary = await core.derive(ADA, job_id, DeriveKind.VARY)
        restyle = await core.derive(ADA, job_id, DeriveKind.RESTYLE, style="none")
        remix = await core.derive(ADA, job_id, DeriveKind.REMIX)
        reroll = await core.derive(ADA, job_id, DeriveKind.REROLL)
        await core.wait_until_idle(ADA.user_key)
    assert 1 <= vary.job.spec.seed - 1000 <= VARIATION_SPREAD
    assert (restyle.job.spec.seed, restyle.job.spec.style) == (1000, None)
    assert (remix.job.spec.seed, remix.job.spec.style) == (1000, "ink")
    assert reroll.job.spec.style == "ink"
    assert {t.job.parent_job_id for t in (vary, restyle, remix, reroll)} == {job_id}


async def test_only_restyle_takes_a_style(open_test_core: OpenCore) -> None:
    async with open_test_core() as core:
        job_id = await posted(core)
        reroll = await core.derive(ADA, job_id, DeriveKind.REROLL, style="none")
        await core.wait_until_idle(ADA.user_key)
    assert reroll.job.spec.style == "ink"


async def test_sharing_outside_the_server_is_refused_by_the_core(open_test_core: OpenCore) -> None:
    # Was enforced only by the Telegram adapter: any other caller could share outside.
    async with open_test_core() as core:
        job_id = await posted(core)
        assert (await core.job_for(ADA, job_id, JobAction.SHARE_OUTSIDE)).id == job_id
        with pytest.raises(NotFound):  # someone else's image is never theirs to send around
            await core.job_for(BOB, job_id, JobAction.SHARE_OUTSIDE)
        await core.update_server_settings(
            ROOT, SettingsChange(allow_external_share=False), is_admin=True
        )
        with pytest.raises(NotAllowed, match="keeps its images inside"):
            await core.job_for(ADA, job_id, JobAction.SHARE_OUTSIDE)
        assert (await core.job_for(ADA, job_id, JobAction.VIEW)).id == job_id


async def test_an_owner_who_opted_out_shares_nothing_outside(open_test_core: OpenCore) -> None:
    dm = user("dan")
    async with open_test_core() as core:
        ticket = await core.submit(request(dm, "a private fox"))
        await core.wait_until_idle(dm.user_key)
        assert (await core.job_for(dm, ticket.job.id, JobAction.SHARE_OUTSIDE)).id
        await core.set_privacy(dm, share_opt_out=True)
        with pytest.raises(NotAllowed, match="opted out"):
            await core.job_for(dm, ticket.job.id, JobAction.SHARE_OUTSIDE)


async def test_toggle_vote_knows_my_vote(open_test_core: OpenCore) -> None:
    # Telegram inferred "already voted" from the number on the button: a stale button (or a
    # vote from another client) flipped the wrong way. The core knows the voter's vote.
    carl = user("carl", server=SERVER)
    async with open_test_core() as core:
        share_id = await share(core, await posted(core))
        first = await core.toggle_vote(BOB, share_id)
        other = await core.toggle_vote(carl, share_id)
        again = await core.toggle_vote(BOB, share_id)
        own = await core.toggle_vote(ADA, share_id)
        await core.vote(BOB, share_id, 1)  # e.g. a reaction: the toggle then takes it back
        back = await core.toggle_vote(BOB, share_id)
    assert (first.score, first.my_vote) == (1, 1)
    assert (other.score, other.my_vote) == (2, 1)
    assert (again.score, again.my_vote) == (1, 0)
    assert (own.score, own.my_vote) == (1, 0)  # one's own image: not counted
    assert (back.score, back.my_vote) == (1, 0)


async def test_the_credit_is_decided_in_the_core(open_test_core: OpenCore) -> None:
    async with open_test_core() as core:
        job_id = await posted(core)
        await share(core, job_id)
        remix = await core.derive(BOB, job_id, DeriveKind.REMIX)
        own = await core.derive(ADA, job_id, DeriveKind.VARY)
        await core.wait_until_idle(BOB.user_key)
        await core.wait_until_idle(ADA.user_key)
        assert await core.credit_for(remix.job) == Credit(job_id=job_id, name="Ada")
        assert await core.credit_for(own.job) is None
        assert await core.credit_for(await core.job(job_id)) is None
        await core.forget(ADA)
        assert await core.credit_for(remix.job) is None  # the original is gone
