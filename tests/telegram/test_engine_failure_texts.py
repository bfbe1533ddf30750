"""A failure made by the engine reaches a Chinese server in Chinese (issue 16).

The error is the engine's own (the real out-of-memory path of ``engine.executors``), raised with
a catalogue key; it travels through the core's delivery to the Telegram adapter, which renders
it in the group's language.
"""

from __future__ import annotations

from pathlib import Path

import torch

from bot.domain import Generated, GenerationSpec
from bot.i18n import t
from bot.ports import ProgressCallback
from bot.testing.executor import FakeExecutor
from engine.executors import run_with_oom_retry
from tests.telegram.conftest import running_bot
from tests.telegram.fake_botapi import FakeBotApi, command_message, user


class _OutOfMemoryExecutor(FakeExecutor):
    """Every image runs out of GPU memory, twice (the engine retries once)."""

    async def generate(
        self, job_id: int, spec: GenerationSpec, on_progress: ProgressCallback
    ) -> Generated:
        self.calls.append((job_id, spec))

        def work() -> Generated:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")

        return run_with_oom_retry(work, lambda: None)


GROUP = -100555
ADMIN = user(1, first_name="Root")


async def _failure_said(api: FakeBotApi, tmp_path: Path, language: str) -> list[str]:
    """What the group reads when an image fails in the engine, its language set to ``language``."""
    async with running_bot(api, tmp_path, executor=_OutOfMemoryExecutor()) as bot:
        api.set_member(GROUP, ADMIN["id"], "creator")
        await api.push(
            command_message(f"/settings set language {language}", from_user=ADMIN, chat_id=GROUP)
        )
        await api.wait_for("sendMessage")
        await api.push(command_message("/imagine 一只猫", from_user=user(42), chat_id=GROUP))
        await bot.core.wait_until_idle("telegram:42")
        await api.wait_for("sendMessage", 2)
    return [c.params["text"] for c in api.calls if c.method in {"sendMessage", "editMessageText"}]


async def test_a_chinese_group_reads_the_engine_failure_in_chinese(
    api: FakeBotApi, tmp_path: Path
) -> None:
    said = await _failure_said(api, tmp_path, "zh")
    assert any(t("engine.out_of_memory", "zh") in s for s in said), said
    assert not any("ran out of memory" in s for s in said)


async def test_an_english_group_reads_it_in_english(api: FakeBotApi, tmp_path: Path) -> None:
    said = await _failure_said(api, tmp_path, "en")
    assert any("The GPU ran out of memory" in s for s in said), said
