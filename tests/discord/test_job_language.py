"""Posts about a job speak its requester's language, also after a restart (issue 16).

In a server that chose no language the user's own client locale decides. It is stored with
the job, so the result or the failure posted by a restarted bot (whose interaction replies
are forgotten) is still in Chinese for a Chinese client. Before, such posts were English.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bot.config import Settings
from bot.domain import JobState, Language
from bot.testing.executor import FakeExecutor
from tests.discord.conftest import running_bot
from tests.discord.fake_discord import FakeDiscord
from tests.fakes import FakeClock

CJK = range(0x4E00, 0xA000)


def chinese(text: str) -> bool:
    return any(ord(ch) in CJK for ch in text)


async def test_a_chinese_client_reads_chinese_posts_after_a_restart(
    settings: Settings, fake: FakeDiscord
) -> None:
    stuck = FakeExecutor(gate=asyncio.Event())  # the GPU never finishes before the restart
    async with running_bot(settings, stuck, FakeClock(), drain_timeout_s=0) as bot:
        for prompt in ("a quiet harbour", "a broken bridge"):
            log = await fake.slash("imagine", {"prompt": prompt}, locale="zh-CN")
            await fake.wait_for(lambda log=log: any(chinese(t) for t in log.texts()))
        assert (await bot.core.job(1)).requester.language is Language.ZH

    def failures() -> list[dict[str, Any]]:  # the channel post; the "queued" replies are ephemeral
        return [
            m
            for m in fake.channel_messages()
            if m["content"].startswith("<@") and "#2 ·" in m["content"]
        ]

    restarted = FakeExecutor(fail_prompts={"a broken bridge"})
    async with running_bot(settings, restarted, FakeClock()) as bot:
        await fake.wait_for(lambda: bool(failures()))
        assert (await bot.core.job(2)).state is JobState.FAILED
    (result,) = fake.posted_with_files()
    (failure,) = failures()
    assert chinese(result["content"])
    labels = [c.get("label") or "" for row in result["components"] for c in row["components"]]
    assert any(chinese(label) for label in labels)
    assert chinese(failure["content"])
