"""The bad-input corpus (tests/corpus/bad_inputs.json) through the core, one row per case.

Each input gets either a queued and delivered job or a clear :class:`TurbobotError`; nothing
stays held, nothing is lost, no traceback is logged. Rows of kinds only an adapter has (button
data, custom ids ...) are run by the adapters' corpus tests.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import pytest

from bot.domain import DeriveKind, GenerateRequest, JobAction, JobState, Platform, Requester
from bot.errors import TurbobotError
from bot.service import Core
from tests.bad_inputs import Case, load_cases
from tests.core.conftest import OpenCore, request
from tests.fakes import RecordingNotifier

SERVER = "g1"
PAGE_SIZE = 10


def someone(name: str = "Ada") -> Requester:
    return Requester(Platform.DISCORD, "ada", name, "chan-ada", server_id=SERVER)


# For each kind the core takes: the request that types the value into that field.
SUBMITS: dict[str, Callable[[str], GenerateRequest]] = {
    "prompt": lambda v: request(someone(), v),
    "negative": lambda v: request(someone(), "a fox", cfg=4.0, negative_prompt=v),
    "display_name": lambda v: request(someone(v), "a fox"),
    "style": lambda v: request(someone(), "a fox", style=v),
    "seed": lambda v: request(someone(), "a fox", seed=int(v)),
    "steps": lambda v: request(someone(), "a fox", steps=int(v)),
    "cfg": lambda v: request(someone(), "a fox", cfg=float(v)),
    "aspect": lambda v: request(someone(), "a fox", aspect=v),
    # Typed in the prompt, as on every platform (no platform has a strength option).
    "n": lambda v: request(someone(), f"a fox --n {v}"),
    "strength": lambda v: request(someone(), f"a fox --strength {v}"),
}


async def by_job_id(core: Core, job_id: int) -> None:
    """Every action that takes a job id from a user; each must refuse with a clear error."""
    who = someone()
    actions: list[Callable[[], Awaitable[object]]] = [
        *(lambda a=a: core.job_for(who, job_id, a) for a in JobAction),
        lambda: core.derive(who, job_id, DeriveKind.REROLL),
        lambda: core.derive(who, job_id, DeriveKind.REMIX),
        lambda: core.cancel(who, job_id),
        lambda: core.delete(who, job_id),
        lambda: core.share(who, job_id),
    ]
    for action in actions:
        with pytest.raises(TurbobotError) as err:
            await action()
        assert str(err.value)


async def by_page(core: Core, page: int) -> None:
    offset = (page - 1) * PAGE_SIZE
    assert isinstance(await core.history(someone(), limit=PAGE_SIZE, offset=offset), list)
    gallery = await core.gallery(Platform.DISCORD, SERVER, limit=PAGE_SIZE, offset=offset)
    assert isinstance(gallery, list)


CORE_KINDS = set(SUBMITS)
CASES = [c for c in load_cases() if c.kind in CORE_KINDS | {"job_id", "page"}]


def test_the_corpus_is_well_formed() -> None:
    cases = load_cases()
    assert len({c.id for c in cases}) == len(cases)
    assert {c.expect for c in cases} <= {"ok", "error"}
    assert len(CASES) >= 60


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_each_bad_input_gets_a_clear_answer_in_the_core(
    open_test_core: OpenCore, case: Case, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = RecordingNotifier(platform=Platform.DISCORD)
    async with open_test_core(notifiers=(notifier,)) as core:
        error: TurbobotError | None = None
        if case.kind == "job_id":
            await by_job_id(core, int(case.value))
        elif case.kind == "page":
            await by_page(core, int(case.value))
        else:
            try:
                ticket = await core.submit(SUBMITS[case.kind](case.value))
            except TurbobotError as err:
                error = err
            else:
                await core.wait_until_idle(ticket.job.requester.user_key)
                assert [j.id for j in notifier.delivered_jobs] == [ticket.job.id]
                assert (await core.job(ticket.job.id)).state is JobState.POSTED
        held = core.cache_sizes()["held_users"]
        queued = await core.queue_of(someone())
    if case.kind in CORE_KINDS:
        assert (error is not None) == (case.expect == "error"), (case, error)
    if error is not None:
        assert str(error).strip(), "an error with no words"
        assert notifier.delivered_jobs == []
    assert held == 0
    assert queued == []
    tracebacks = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert tracebacks == []
