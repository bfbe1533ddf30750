"""The optional image safety check (issue 14) in the core: flag -> spoiler or withheld per
setting, the audit log, the stored verdict across a restart, fail-open."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from bot.domain import JobState, Platform, SafetyMode, SettingsChange
from bot.errors import BadRequest
from bot.i18n import msg
from bot.safety import AUDIT_ACTION, DEFAULT_POLICY
from bot.testing.executor import FakeExecutor
from tests.core.conftest import OpenCore, request, user
from tests.fakes import RecordingNotifier

SERVER = "g1"


def discord_pair() -> tuple[RecordingNotifier, RecordingNotifier]:
    return RecordingNotifier(), RecordingNotifier(platform=Platform.DISCORD)


async def test_off_by_default_checks_nothing(
    open_test_core: OpenCore, executor: FakeExecutor
) -> None:
    console, discord = discord_pair()
    alice = user()
    async with open_test_core(notifiers=(console, discord)) as core:
        ticket = await core.submit(request(alice))
        await core.wait_until_idle(alice.user_key)
        job = await core.job(ticket.job.id)
    assert executor.checked == []
    assert job.verdict is None
    assert [j.spoiler for j in console.delivered_jobs] == [False]


@pytest.mark.parametrize("mode", [SafetyMode.SPOILER, SafetyMode.WITHHOLD])
async def test_a_flagged_image_is_spoilered_or_withheld_per_operator_default(
    open_test_core: OpenCore, executor: FakeExecutor, tmp_path: Path, mode: SafetyMode
) -> None:
    executor.verdicts = [2.5]
    console, discord = discord_pair()
    alice = user()
    async with open_test_core(notifiers=(console, discord), TURBOBOT_SAFETY_CHECK=mode) as core:
        ticket = await core.submit(request(alice))
        await core.wait_until_idle(alice.user_key)
        job = await core.job(ticket.job.id)
    assert job.verdict is not None
    assert job.verdict.flagged
    assert job.verdict.score == 2.5
    assert job.verdict.policy == DEFAULT_POLICY
    if mode is SafetyMode.SPOILER:
        assert job.state is JobState.POSTED
        assert [(j.id, j.spoiler) for j in console.delivered_jobs] == [(job.id, True)]
    else:
        assert job.state is JobState.FAILED
        assert console.delivered == []
        assert console.failures == [(job.id, str(msg("core.safety.withheld", job=job.id)))]
        assert job.image_path is None  # a withheld image is never written to disk
        assert not list((tmp_path / "data").rglob("*.jpg"))


async def test_a_clean_image_is_posted_normally_and_its_verdict_kept(
    open_test_core: OpenCore, executor: FakeExecutor
) -> None:
    executor.verdicts = [-3.0]
    console, discord = discord_pair()
    alice = user()
    async with open_test_core(
        notifiers=(console, discord), TURBOBOT_SAFETY_CHECK="withhold"
    ) as core:
        ticket = await core.submit(request(alice))
        await core.wait_until_idle(alice.user_key)
        job = await core.job(ticket.job.id)
    assert job.state is JobState.POSTED
    assert job.verdict is not None
    assert not job.verdict.flagged
    assert [j.spoiler for j in console.delivered_jobs] == [False]


async def test_the_server_setting_overrides_the_operator_and_flags_are_audited(
    open_test_core: OpenCore, executor: FakeExecutor
) -> None:
    executor.verdicts = [1.0]
    console, discord = discord_pair()
    admin = user("root", server=SERVER)
    bob = user("bob", server=SERVER)
    async with open_test_core(notifiers=(console, discord), TURBOBOT_SAFETY_CHECK="off") as core:
        change = SettingsChange(safety_check=SafetyMode.SPOILER)
        settings = await core.update_server_settings(admin, change, is_admin=True)
        assert settings.safety_check is SafetyMode.SPOILER
        ticket = await core.submit(request(bob))
        await core.wait_until_idle(bob.user_key)
        audit = await core.audit_log(admin, is_admin=True)
    assert [j.spoiler for j in discord.delivered_jobs] == [True]
    flags = [e for e in audit if e.action == AUDIT_ACTION]
    assert len(flags) == 1
    assert flags[0].target == f"job #{ticket.job.id}"
    assert flags[0].actor_user_id == "bob"
    assert "spoiler" in flags[0].detail


async def test_a_server_may_turn_the_check_off_and_bad_modes_are_refused(
    open_test_core: OpenCore, executor: FakeExecutor
) -> None:
    executor.verdicts = [1.0]
    console, discord = discord_pair()
    admin = user("root", server=SERVER)
    async with open_test_core(
        notifiers=(console, discord), TURBOBOT_SAFETY_CHECK="withhold"
    ) as core:
        await core.update_server_settings(
            admin, SettingsChange(safety_check=SafetyMode.OFF), is_admin=True
        )
        with pytest.raises(BadRequest) as bad:
            await core.update_server_settings(
                admin,
                SettingsChange(safety_check="maybe"),  # type: ignore[arg-type]
                is_admin=True,
            )
        ticket = await core.submit(request(admin))
        await core.wait_until_idle(admin.user_key)
        job = await core.job(ticket.job.id)
    assert "off, spoiler, withhold" in str(bad.value.message)
    assert executor.checked == []
    assert job.state is JobState.POSTED


async def test_a_grid_is_flagged_when_any_image_is(
    open_test_core: OpenCore, executor: FakeExecutor
) -> None:
    executor.verdicts = [-1.0, 0.5, -2.0, -1.0]
    console, discord = discord_pair()
    alice = user()
    async with open_test_core(
        notifiers=(console, discord), TURBOBOT_SAFETY_CHECK="spoiler"
    ) as core:
        ticket = await core.submit(request(alice, n=4))
        await core.wait_until_idle(alice.user_key)
        job = await core.job(ticket.job.id)
    assert len(executor.checked) == 4  # each image, not the grid
    assert job.verdict is not None
    assert job.verdict.flagged
    assert job.verdict.score == 0.5
    assert [j.spoiler for j in console.delivered_jobs] == [True]


@pytest.mark.parametrize("failure", ["fail", "hang", "unavailable"])
async def test_fail_open_a_failed_or_missing_check_posts_normally(
    open_test_core: OpenCore,
    executor: FakeExecutor,
    caplog: pytest.LogCaptureFixture,
    failure: str,
) -> None:
    if failure == "unavailable":
        executor.check_available = False
    else:
        executor.verdicts = [failure]
    console, discord = discord_pair()
    alice = user()
    caplog.set_level(logging.WARNING, logger="bot.safety")
    async with open_test_core(
        notifiers=(console, discord),
        TURBOBOT_SAFETY_CHECK="withhold",
        TURBOBOT_SAFETY_TIME_LIMIT_S=0.05,
    ) as core:
        ticket = await core.submit(request(alice))
        await core.wait_until_idle(alice.user_key)
        job = await core.job(ticket.job.id)
    assert job.state is JobState.POSTED
    assert job.verdict is None
    assert [j.spoiler for j in console.delivered_jobs] == [False]
    assert any(f"job #{job.id}" in r.getMessage() for r in caplog.records)


async def test_after_a_restart_a_flagged_result_is_posted_spoilered_once(
    open_test_core: OpenCore, executor: FakeExecutor
) -> None:
    """The verdict is stored with the result: a job generated while its platform was away is
    recovered and posted behind its spoiler, once."""
    executor.verdicts = [3.0]
    alice = user()
    async with open_test_core(notifiers=(), TURBOBOT_SAFETY_CHECK="spoiler") as core:
        ticket = await core.submit(request(alice))
        # Generated and parked: its platform has no adapter yet (the bound only stops a hang).
        async with asyncio.timeout(60):
            # ASYNC110: a parked result signals nothing; the stored row is the witness.
            while (await core.job(ticket.job.id)).state is not JobState.GENERATED:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    n = RecordingNotifier()
    for _ in range(2):  # the second restart must not post it again
        async with open_test_core(notifiers=(n,), TURBOBOT_SAFETY_CHECK="off") as core:
            await core.wait_until_idle(alice.user_key)
    assert [(j.id, j.spoiler) for j in n.delivered_jobs] == [(ticket.job.id, True)]
    assert len(executor.checked) == 1
