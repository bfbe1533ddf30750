"""Posts about a job speak its requester's language, also after a restart (issue 16).

In a private chat (and in a group that chose no language) the language is the user's own
``language_code``. It is stored with the job, so a result or a failure posted by a restarted
bot, whose status messages are forgotten, is still in Chinese for a Chinese user. Before, the
job did not remember it and such posts came out in English.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.domain import JobState, Language
from bot.testing.executor import FakeExecutor
from tests.telegram.conftest import running_bot
from tests.telegram.fake_botapi import FakeBotApi, command_message, user

CJK = range(0x4E00, 0xA000)
ZH_USER = user(42, language_code="zh-hans")


def chinese(text: str) -> bool:
    return any(ord(ch) in CJK for ch in text)


async def test_a_private_chat_in_chinese_stays_chinese_across_a_restart(
    api: FakeBotApi, tmp_path: Path
) -> None:
    stuck = FakeExecutor(gate=asyncio.Event())  # the GPU never finishes before the restart
    async with running_bot(api, tmp_path, stuck, drain_timeout_s=0) as bot:
        for prompt in ("a quiet harbour", "a broken bridge"):
            await api.push(command_message(f"/imagine {prompt}", from_user=ZH_USER, chat_id=42))
        queued = await api.wait_for("sendMessage", 2)
        assert [chinese(str(c.params["text"])) for c in queued] == [True, True]
        stored = await bot.core.job(1)
        assert stored.requester.language is Language.ZH

    restarted = FakeExecutor(fail_prompts={"a broken bridge"})
    async with running_bot(api, tmp_path, restarted) as bot:
        (photo,) = await api.wait_for("sendPhoto")
        failure = (await api.wait_for("sendMessage", 3))[2]
        assert (await bot.core.job(2)).state is JobState.FAILED
    assert chinese(str(photo.params["caption"]))
    assert chinese(str(failure.params["text"]))
    buttons = [b["text"] for row in photo.params["reply_markup"]["inline_keyboard"] for b in row]
    assert any(chinese(label) for label in buttons)
