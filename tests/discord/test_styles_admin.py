"""``/styles rescan`` (operators only) and the ``steps`` option's range, over the fake Discord."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.domain import BASE_STEPS, TURBO_STEPS, RefusedStyle, StepRange, StyleInfo
from bot.testing.executor import DEFAULT_STYLES, FakeExecutor
from tests.discord.conftest import make_settings, running_bot
from tests.discord.fake_discord import ALICE, FakeDiscord, InteractionLog
from tests.fakes import FakeClock

NEON = StyleInfo("neon", "Neon", "霓虹", "Glowing signs", 1.0)
BROKEN = RefusedStyle(
    "broken", "styles.refused.not_safetensors", (("file", "broken.safetensors"),), "a pickle"
)
MANAGE_GUILD = 1 << 5


async def _reply(fake: FakeDiscord, log: InteractionLog, containing: str) -> str:
    await fake.wait_for(lambda: any(containing in t for t in log.texts()))
    return next(t for t in log.texts() if containing in t)


async def _offered(fake: FakeDiscord) -> list[str]:
    log = await fake.slash("imagine", {"prompt": "x", "style": ""}, focused="style")
    await fake.answered(log)
    return [c["value"] for c in log.callbacks[0]["data"]["choices"]]


async def test_rescan_lists_the_refused_folders_with_why_in_the_users_language(
    tmp_path: Path, fake: FakeDiscord
) -> None:
    settings = make_settings(tmp_path / "d", fake, TURBOBOT_OPERATOR_IDS=f"discord:{ALICE}")
    executor = FakeExecutor(refused=[BROKEN])
    async with running_bot(settings, executor, FakeClock()):
        log = await fake.slash("styles", sub="rescan", admin=True)
        english = await _reply(fake, log, "Styles rescanned")
        log = await fake.slash("styles", sub="rescan", admin=True, locale="zh-CN")
        chinese = await _reply(fake, log, "风格已重新扫描")
    assert "Refused: broken (broken.safetensors is not a valid safetensors file" in english
    assert "已拒绝" in chinese
    assert "broken.safetensors 不是有效的 safetensors 文件" in chinese


async def test_operator_rescan_reports_changes_and_autocomplete_offers_them_at_once(
    tmp_path: Path, fake: FakeDiscord
) -> None:
    settings = make_settings(tmp_path / "d", fake, TURBOBOT_OPERATOR_IDS=f"discord:{ALICE}")
    executor = FakeExecutor()
    async with running_bot(settings, executor, FakeClock()):
        assert "neon" not in await _offered(fake)
        executor.on_disk = [DEFAULT_STYLES[0], NEON]  # a folder added, another removed
        log = await fake.slash("styles", sub="rescan", admin=True)
        text = await _reply(fake, log, "Styles rescanned")
        assert "Added: neon." in text
        assert "Removed: ink." in text
        assert await _offered(fake) == ["watercolor", "neon"]
        (styles,) = [c for c in fake.commands[None] if c["name"] == "styles"]
        assert int(styles["default_member_permissions"]) == MANAGE_GUILD


@pytest.mark.parametrize("operators", ["", f"telegram:{ALICE}", "discord:1"])
async def test_rescan_is_refused_to_anyone_not_listed_even_a_server_admin(
    tmp_path: Path, fake: FakeDiscord, operators: str
) -> None:
    settings = make_settings(tmp_path / "d", fake, TURBOBOT_OPERATOR_IDS=operators)
    executor = FakeExecutor(on_disk=[NEON])
    async with running_bot(settings, executor, FakeClock()):
        log = await fake.slash("styles", sub="rescan", admin=True)
        await _reply(fake, log, "Only the bot's operators")
        assert executor.rescans == 0
        assert "neon" not in await _offered(fake)


@pytest.mark.parametrize(
    ("turbo_lora", "steps"), [("loras/turbo/turbo.safetensors", TURBO_STEPS), ("none", BASE_STEPS)]
)
async def test_steps_option_range_is_the_cores(
    tmp_path: Path, fake: FakeDiscord, turbo_lora: str, steps: StepRange
) -> None:
    settings = make_settings(tmp_path / "d", fake, TURBOBOT_TURBO_LORA=turbo_lora)
    executor = FakeExecutor()
    async with running_bot(settings, executor, FakeClock()):
        (imagine,) = [c for c in fake.commands[None] if c["name"] == "imagine"]
        options = {o["name"]: o for o in imagine["options"]}
        assert (options["steps"]["min_value"], options["steps"]["max_value"]) == (
            steps.low,
            steps.high,
        )
        log = await fake.slash("imagine", {"prompt": "a cat", "steps": steps.high})
        await _reply(fake, log, "#")
        await fake.wait_for(lambda: bool(executor.calls))
        assert executor.calls[0][1].steps == steps.high
