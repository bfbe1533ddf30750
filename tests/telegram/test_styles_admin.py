"""``/styles rescan`` on Telegram: operators only; new styles are on the keyboard at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.domain import RefusedStyle, StyleInfo
from bot.testing.executor import DEFAULT_STYLES, FakeExecutor
from tests.telegram.conftest import make_settings, running_bot
from tests.telegram.fake_botapi import FakeBotApi, user
from tests.telegram.test_adapter import buttons, reply_to

NEON = StyleInfo("neon", "Neon", "霓虹", "Glowing signs", 1.0)
BROKEN = RefusedStyle(
    "broken", "styles.refused.not_safetensors", (("file", "broken.safetensors"),), "a pickle"
)


async def test_operator_rescan_reports_changes_and_the_keyboard_offers_them(
    api: FakeBotApi, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, api.base_url, TURBOBOT_OPERATOR_IDS="telegram:42")
    executor = FakeExecutor()
    async with running_bot(api, tmp_path, executor=executor, settings=settings) as bot:
        await reply_to(bot, "/style")
        assert "tb:ss:neon" not in buttons(api.calls_of("sendMessage")[-1])
        executor.on_disk = [DEFAULT_STYLES[0], NEON]
        text = await reply_to(bot, "/styles rescan")
        assert text.startswith("Styles rescanned")
        assert "Added: neon." in text
        assert "Removed: ink." in text
        await reply_to(bot, "/style")
        offered = buttons(api.calls_of("sendMessage")[-1])
        assert "tb:ss:neon" in offered
        assert "tb:ss:ink" not in offered


async def test_rescan_lists_the_refused_folders_with_why_in_the_users_language(
    api: FakeBotApi, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, api.base_url, TURBOBOT_OPERATOR_IDS="telegram:42")
    executor = FakeExecutor(refused=[BROKEN])
    async with running_bot(api, tmp_path, executor=executor, settings=settings) as bot:
        english = await reply_to(bot, "/styles rescan")
        chinese = await reply_to(bot, "/styles rescan", user(42, language_code="zh-hans"))
    assert "Refused: broken (broken.safetensors is not a valid safetensors file" in english
    assert "已拒绝" in chinese
    assert "broken.safetensors 不是有效的 safetensors 文件" in chinese


@pytest.mark.parametrize("operators", ["", "discord:42", "telegram:7"])
async def test_rescan_is_refused_to_anyone_not_listed(
    api: FakeBotApi, tmp_path: Path, operators: str
) -> None:
    settings = make_settings(tmp_path, api.base_url, TURBOBOT_OPERATOR_IDS=operators)
    executor = FakeExecutor(on_disk=[NEON])
    async with running_bot(api, tmp_path, executor=executor, settings=settings) as bot:
        assert "operators" in await reply_to(bot, "/styles rescan")
        assert executor.rescans == 0


async def test_styles_without_rescan_shows_usage_and_rescans_nothing(
    api: FakeBotApi, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, api.base_url, TURBOBOT_OPERATOR_IDS="telegram:42")
    executor = FakeExecutor()
    async with running_bot(api, tmp_path, executor=executor, settings=settings) as bot:
        assert await reply_to(bot, "/styles") == "Usage: /styles rescan (operators only)"
        assert executor.rescans == 0
        zh = await reply_to(bot, "/styles rescan", from_user=user(42, language_code="zh-hans"))
        assert zh.startswith("风格已重新扫描")
