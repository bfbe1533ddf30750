"""The bad-input corpus (tests/corpus/bad_inputs.json) through both chat adapters.

One table, every row typed into Telegram (over the fake Bot API) and Discord (over the fake
Discord) the way a user would type it. Each must get a clear answer — a job made when the row
expects ``ok``, a message that is not "something went wrong" when it expects ``error`` — with
no traceback or error in the log, nothing refused by the platform (over a limit), and nothing
left held in the core for that user. New findings get a row in the JSON, not a test here.

The core runs the same rows itself in tests/core/test_corpus.py (where it exists).
"""

from __future__ import annotations

import asyncio
import io
import logging
from pathlib import Path
from typing import Any

import pytest

from adapters.console import CONSOLE_USER, ConsoleAdapter
from adapters.discord.texts import say
from bot.domain import Platform, Requester
from bot.i18n import t
from bot.service import open_core
from bot.testing.executor import FakeExecutor
from tests.bad_inputs import Case, load_cases
from tests.core.conftest import make_settings as core_settings
from tests.discord.conftest import make_settings as discord_settings
from tests.discord.conftest import running_bot as discord_bot
from tests.discord.fake_discord import FakeDiscord, Unsendable
from tests.fakes import FakeClock
from tests.telegram.conftest import running_bot as telegram_bot
from tests.telegram.fake_botapi import BOT_USER, FakeBotApi, callback_query, command_message, user

# Kinds that end in a job when the row expects "ok"; the others (ids, pages) only answer.
JOB_KINDS = {"prompt", "negative", "display_name", "style", "seed", "steps", "cfg", "aspect", "n"}
WAIT_S = 10.0


def makes_job(case: Case) -> bool:
    """The row ends in a queued job (the others are refused, or only answered)."""
    return case.expect == "ok" and case.kind in JOB_KINDS


CASES = load_cases()


def test_the_corpus_is_well_formed() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert {c.expect for c in CASES} <= {"ok", "error"}


def trouble(caplog: pytest.LogCaptureFixture, since: int) -> list[str]:
    return [
        r.getMessage()[:200]
        for r in caplog.records[since:]
        if r.levelno >= logging.ERROR or r.exc_info
    ]


# ----- Telegram -----
def telegram_command(case: Case) -> str:
    """The message a Telegram user sends for this row."""
    option = {"style": "--style", "seed": "--seed", "steps": "--steps", "aspect": "--aspect"}
    option |= {"n": "--n", "strength": "--strength"}
    match case.kind:
        case "prompt":
            return f"/imagine {case.value}"
        case "negative":
            return f"/imagine a fox --cfg 4 --no {case.value}"
        case "cfg":
            return f"/imagine a fox --cfg {case.value}"
        case "job_id":
            return f"/show {case.value}"
        case "display_name":
            return "/imagine a fox"
        case _:
            return f"/imagine a fox {option[case.kind]} {case.value}"


async def telegram_case(bot: Any, case: Case, uid: int) -> list[str]:
    """Problems with this row on Telegram (empty when it was handled well)."""
    api: FakeBotApi = bot.api
    chat = str(uid)
    mine = lambda c: str(c.params.get("chat_id")) == chat  # noqa: E731
    if case.kind == "page":
        picker = {
            "message_id": 1,
            "date": 1_800_000_000,
            "chat": {"id": uid, "type": "private"},
            "from": BOT_USER,
            "text": "picker",
        }
        query = f"cq-{uid}"
        await api.push(
            callback_query(f"tb:sp:{case.value}", picker, from_user=user(uid), query_id=query)
        )
        await api.wait_for(
            "answerCallbackQuery",
            where=lambda c: c.params["callback_query_id"] == query,
            within=WAIT_S,
        )
        return []
    sender = user(uid, first_name=case.value if case.kind == "display_name" else "Ada")
    await api.push(command_message(telegram_command(case), from_user=sender))
    if makes_job(case):
        await api.wait_for("sendPhoto", where=mine, within=WAIT_S)
        return []
    replies = await api.wait_for("sendMessage", where=mine, within=WAIT_S)
    text = str(replies[0].params["text"])
    problems = []
    if text == t("telegram.something_wrong") or text.startswith("Queued"):
        problems.append(f"answered {text[:80]!r}")
    if api.calls_of("sendPhoto") and any(mine(c) for c in api.calls_of("sendPhoto")):
        problems.append("made an image")
    return problems


async def test_every_corpus_row_on_telegram(
    api: FakeBotApi, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    failures: dict[str, list[str]] = {}
    async with telegram_bot(api, tmp_path) as bot:
        for n, case in enumerate(CASES):
            uid = 5000 + n
            since = len(caplog.records)
            try:
                problems = await telegram_case(bot, case, uid)
            except TimeoutError:
                problems = ["no answer"]
            requester = Requester(Platform.TELEGRAM, str(uid), "Ada", str(uid))
            async with asyncio.timeout(WAIT_S):
                await bot.core.wait_until_idle(requester.user_key)
            if await bot.core.queue_of(requester):
                problems.append("left a job held")
            problems += trouble(caplog, since)
            if problems:
                failures[case.id] = problems
        refused = [(c.method, str(c.params)[:120]) for c in api.refusals()]
    assert failures == {}
    assert refused == []


# ----- console -----
def console_line(case: Case) -> str | None:
    """The line typed at the console for this row (None: the console has no such input)."""
    if case.kind == "job_id":
        return f"/cancel {case.value}"
    if case.kind in {"display_name", "page"}:
        return None
    return telegram_command(case)


async def test_every_corpus_row_on_the_console(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = io.StringIO()
    settings = core_settings(tmp_path / "data")
    failures: dict[str, list[str]] = {}
    async with open_core(settings, FakeExecutor(), FakeClock()) as core:
        console = ConsoleAdapter(core, on_end_of_input=lambda: None, stdout=out)
        core.register(console)
        for case in CASES:
            line = console_line(case)
            if line is None:
                continue
            since, before = len(caplog.records), len(out.getvalue().splitlines())
            try:
                async with asyncio.timeout(WAIT_S):
                    await console.handle_line(line)
                    await core.wait_until_idle(CONSOLE_USER.user_key)
            except Exception as err:  # any escape is the finding
                failures[case.id] = [f"raised {type(err).__name__}: {str(err)[:100]}"]
                continue
            said = out.getvalue().splitlines()[before:]
            queued = any(" queued: " in s for s in said)
            problems = trouble(caplog, since)
            if not said:
                problems.append("no answer")
            elif queued != makes_job(case):
                problems.append(f"answered {said[0][:80]!r}")
            if problems:
                failures[case.id] = problems
        await console.aclose()
    assert failures == {}


# ----- Discord -----
def discord_command(case: Case) -> tuple[str, dict[str, Any]] | None:
    """The slash command and options a Discord user sends for this row (None: Discord has no
    way to type it). What has no option of its own is typed in the prompt, as on Telegram."""
    fox: dict[str, Any] = {"prompt": "a fox"}
    commands: dict[str, tuple[str, dict[str, Any]]] = {
        "prompt": ("imagine", {"prompt": case.value}),
        "display_name": ("imagine", fox),
        "style": ("imagine", {**fox, "style": case.value}),
        "aspect": ("imagine", {**fox, "aspect": case.value}),
        "negative": ("imagine", {**fox, "cfg": 4.0, "negative": case.value}),
        "cfg": ("imagine", {"prompt": f"a fox --cfg {case.value}"}),
        "n": ("imagine", {"prompt": f"a fox --n {case.value}"}),
        "strength": ("imagine", {"prompt": f"a fox --strength {case.value}"}),
    }
    numbers = {"seed": ("imagine", "seed"), "steps": ("imagine", "steps")}
    numbers |= {"job_id": ("show", "job"), "page": ("history", "page")}
    if case.kind in numbers:
        command, option = numbers[case.kind]
        base = fox if command == "imagine" else {}
        return command, {**base, option: int(case.value)}
    return commands.get(case.kind)


async def discord_case(fake: FakeDiscord, bot: Any, case: Case, uid: int) -> list[str]:
    command = discord_command(case)
    if command is None:
        return []
    if case.kind == "display_name":
        fake.display_names[uid] = case.value
    posts = len(fake.posted_with_files())
    try:
        log = await fake.slash(command[0], command[1], user=uid)
    except Unsendable:
        return []  # Discord refuses the value itself, with its own message
    if makes_job(case):
        await fake.wait_for(lambda: len(fake.posted_with_files()) > posts, within=WAIT_S)
        return []
    await fake.wait_for(lambda: bool(log.texts()), within=WAIT_S)
    await asyncio.sleep(0)
    text = log.texts()[-1]
    problems = []
    if text == say("en-US", "went_wrong") or "queued" in text.lower():
        problems.append(f"answered {text[:80]!r}")
    if len(fake.posted_with_files()) > posts:
        problems.append("made an image")
    return problems


async def test_every_corpus_row_on_discord(
    fake: FakeDiscord, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    failures: dict[str, list[str]] = {}
    settings = discord_settings(tmp_path, fake)
    async with discord_bot(settings, FakeExecutor(), FakeClock()) as bot:
        for n, case in enumerate(CASES):
            uid = 900_000_000_000_010_000 + n
            since = len(caplog.records)
            try:
                problems = await discord_case(fake, bot, case, uid)
            except TimeoutError:
                problems = ["no answer"]
            key = f"{Platform.DISCORD}:{uid}"
            async with asyncio.timeout(WAIT_S):
                await bot.core.wait_until_idle(key)
            problems += trouble(caplog, since)
            if problems:
                failures[case.id] = problems
    assert failures == {}
    assert fake.refused == []


@pytest.fixture
async def fake() -> Any:
    async with FakeDiscord() as platform:
        yield platform


@pytest.fixture
async def api() -> Any:
    async with FakeBotApi() as server:
        yield server


@pytest.fixture(autouse=True)
def _restore_discord_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    import discord

    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    gateway = discord.gateway.DiscordWebSocket
    monkeypatch.setattr(gateway, "DEFAULT_GATEWAY", gateway.DEFAULT_GATEWAY)
