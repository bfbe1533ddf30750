"""Base mode (``TURBOBOT_TURBO_LORA=none``): the core's step range comes from the settings."""

from __future__ import annotations

import pytest

from bot.errors import BadRequest
from tests.core.conftest import OpenCore, request, user


async def test_base_mode_defaults_to_30_steps_and_allows_50(open_test_core: OpenCore) -> None:
    alice = user("alice")
    async with open_test_core(TURBOBOT_TURBO_LORA="none") as core:
        default = await core.submit(request(alice))
        most = await core.submit(request(alice, steps=50))
        with pytest.raises(BadRequest, match="Steps must be from 10 to 50, not 51"):
            await core.submit(request(alice, steps=51))
        with pytest.raises(BadRequest, match="Steps must be from 10 to 50, not 4"):
            await core.submit(request(alice, steps=4))
    assert default.job.spec.steps == 30
    assert most.job.spec.steps == 50


async def test_turbo_mode_keeps_the_distilled_range(open_test_core: OpenCore) -> None:
    alice = user("alice")
    async with open_test_core() as core:
        default = await core.submit(request(alice))
        with pytest.raises(BadRequest, match="Steps must be from 1 to 8, not 30"):
            await core.submit(request(alice, steps=30))
    assert default.job.spec.steps == 4
