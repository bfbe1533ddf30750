"""Discord seams (issues 15 and 17) over the fake Discord, which refuses what Discord refuses:
content over 2,000 characters, over 25 choices, an acknowledgement after 3 s."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.discord import DiscordAdapter
from adapters.discord.texts import say
from bot.domain import MAX_PROMPT_CHARS, GenerateRequest, Platform, StyleInfo, Ticket
from bot.service import Core, open_core
from bot.testing.executor import FakeExecutor
from tests.discord.conftest import Bot, make_settings, running_bot
from tests.discord.fake_discord import ALICE, CONTENT_LIMIT, FakeDiscord, InteractionLog
from tests.fakes import FakeClock

ALICE_KEY = f"{Platform.DISCORD}:{ALICE}"
LONG_PROMPT = ("a fox 🦊 in snow " * 200)[:MAX_PROMPT_CHARS].strip()


def no_trouble(fake: FakeDiscord, caplog: pytest.LogCaptureFixture) -> None:
    """Discord refused nothing, and nothing unexpected was logged."""
    assert fake.refused == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def shown(fake: FakeDiscord, log: InteractionLog, containing: str) -> str:
    """Wait until the ephemeral reply shows ``containing``; return that text."""
    await fake.wait_for(lambda: any(containing in t for t in log.texts()))
    return next(t for t in log.texts() if containing in t)


async def posted(fake: FakeDiscord, bot: Bot) -> dict[str, Any]:
    await fake.wait_for(lambda: bool(fake.posted_with_files()))
    await bot.core.wait_until_idle(ALICE_KEY)
    return fake.posted_with_files()[-1]


# ----- the fake refuses what Discord refuses -----
async def test_the_fake_refuses_long_content_many_choices_and_late_acknowledgements(
    fake: FakeDiscord, bot: Bot
) -> None:
    from tests.discord.fake_discord import form_problem

    assert form_problem({"content": "x" * CONTENT_LIMIT}) is None
    assert form_problem({"content": "x" * (CONTENT_LIMIT + 1)}) is not None
    assert form_problem({"type": 8, "data": {"choices": [{}] * 26}}) is not None
    assert form_problem({"embeds": [{"description": "x" * 4097}]}) is not None
    # An interaction answered more than 3 s after it was sent is unknown to Discord.
    loop = asyncio.get_running_loop()
    original = loop.time
    log = await fake.slash("help")
    await fake.answered(log)
    late = InteractionLog(id=1, token="tok-late", sent_at=original() - 3.5)
    fake.interactions[late.token] = late
    response = fake._callback(late.token, {"type": 5}, [])
    assert response.status == 404
    assert fake.refused[-1][2] == "late"


# ----- long text arrives shortened -----
async def test_a_long_prompt_is_posted_with_its_settings(
    fake: FakeDiscord, bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    log = await fake.slash("imagine", {"prompt": LONG_PROMPT, "seed": 5})
    message = await posted(fake, bot)
    assert len(message["content"]) <= CONTENT_LIMIT
    assert message["content"].startswith(f"<@{ALICE}> **a fox 🦊 in snow")
    assert "seed 5" in message["content"].splitlines()[-1]
    await shown(fake, log, "Done!")
    # Info shows the whole job, also within the limit.
    job_id = bot.executor.calls[0][0]
    info = await fake.click(int(message["id"]), f"tb:info:{job_id}")
    assert "Prompt: a fox" in await shown(fake, info, "Prompt:")
    no_trouble(fake, caplog)


async def test_an_error_quoting_a_5000_character_style_arrives_shortened(
    fake: FakeDiscord, bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    log = await fake.slash("imagine", {"prompt": "a fox", "style": "s" * 5000})
    text = await shown(fake, log, "Unknown style")
    assert len(text) <= CONTENT_LIMIT
    assert text != say("en-US", "went_wrong")
    assert bot.executor.calls == []
    no_trouble(fake, caplog)


async def test_prompt_at_the_limit_is_queued_and_one_over_is_refused(
    fake: FakeDiscord, bot: Bot
) -> None:
    await fake.slash("imagine", {"prompt": "x" * MAX_PROMPT_CHARS})
    await posted(fake, bot)
    log = await fake.slash("imagine", {"prompt": "x" * (MAX_PROMPT_CHARS + 1)})
    assert f"the limit is {MAX_PROMPT_CHARS}" in await shown(fake, log, "limit")
    assert len(bot.executor.calls) == 1


async def test_autocomplete_offers_at_most_25_styles(tmp_path: Path, fake: FakeDiscord) -> None:
    executor = FakeExecutor(
        style_list=[StyleInfo(f"style{n}", f"Style {n}", f"风格{n}", "d", 1.0) for n in range(40)]
    )
    settings = make_settings(tmp_path, fake)
    async with running_bot(settings, executor, FakeClock()):
        log = await fake.slash("imagine", {"prompt": "a", "style": "style"}, focused="style")
        await fake.answered(log)
        assert len(log.callbacks[0]["data"]["choices"]) == 25
        assert fake.refused == []


# ----- result captions show user text as typed -----
async def test_result_captions_escape_markdown_and_mentions(fake: FakeDiscord, bot: Bot) -> None:
    await fake.slash("imagine", {"prompt": "[x](https://evil.example) @everyone **bold**"})
    content = (await posted(fake, bot))["content"]
    assert re.search(r"(?<!\\)\[x\]\(", content) is None  # a masked link would render
    assert "\\[x](https://evil.example)" in content
    assert "@everyone" not in content  # escaped with a zero-width space
    assert "@\u200beveryone" in content
    assert "\\*\\*bold\\*\\*" in content


# ----- the 3 s acknowledgement does not depend on how fast the core is -----
class SlowSubmit:
    """The real core, whose ``submit`` waits until Discord has seen the acknowledgement
    (a slow SQLite commit, say): a handler that deferred after submitting never gets there."""

    def __init__(self, core: Core, fake: FakeDiscord) -> None:
        self._core = core
        self._fake = fake
        self.acknowledged_first: list[bool] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core, name)

    async def submit(self, request: GenerateRequest, *, image: bytes | None = None) -> Ticket:
        logs = list(self._fake.interactions.values())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await logs[-1].answered.wait()
        self.acknowledged_first.append(logs[-1].answered.is_set())
        return await self._core.submit(request, image=image)


@contextlib.asynccontextmanager
async def slow_bot(tmp_path: Path, fake: FakeDiscord) -> AsyncIterator[SlowSubmit]:
    settings = make_settings(tmp_path, fake)
    async with open_core(settings, FakeExecutor(), FakeClock()) as core:
        slow = SlowSubmit(core, fake)
        adapter = DiscordAdapter(
            slow,  # type: ignore[arg-type]
            settings,
            clock=FakeClock(),
            guild_ready_timeout=0.05,
        )
        core.register(adapter)
        await adapter.start()
        try:
            yield slow
        finally:
            await adapter.stop_intake()
            await adapter.aclose()


async def test_the_deferral_arrives_before_a_slow_submit_returns(
    tmp_path: Path, fake: FakeDiscord
) -> None:
    async with slow_bot(tmp_path, fake) as slow:
        log = await fake.slash("imagine", {"prompt": "a slow commit"})
        await shown(fake, log, "#1")
        assert slow.acknowledged_first == [True]
        assert log.callbacks[0]["type"] == 5
        assert fake.refused == []
