"""The Telegram iteration loop on the real tiny pipeline (issue 13): a grid, V2, U3 and a remix
by reply, each rendered by diffusers on the CPU and posted through python-telegram-bot to the
fake Bot API, which checks every photo against Telegram's limits."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from adapters.telegram import TelegramAdapter
from bot.domain import JobKind, JobState
from bot.service import Core, open_core
from engine.executors import LocalExecutor
from engine.loading import load_engine
from engine.pipeline import Engine
from tests.engine.conftest import tiny_settings
from tests.fakes import FakeClock
from tests.telegram.conftest import make_settings
from tests.telegram.fake_botapi import (
    Call,
    FakeBotApi,
    callback_query,
    command_message,
    sent_message,
    text_reply,
    user,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ADA = user(42)
USER_KEY = "telegram:42"


@pytest.fixture(scope="module")
def tiny_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return load_engine(tiny_settings(tmp_path_factory.mktemp("tiny")))


@pytest.fixture
async def core(api: FakeBotApi, tiny_engine: Engine, tmp_path: Path) -> AsyncIterator[Core]:
    """The real core on the tiny engine, with the Telegram adapter started against ``api``."""
    tiny_engine.data_dir = tmp_path  # the core's data dir: parents' images are read from it
    executor = LocalExecutor(tiny_engine, jpeg_quality=95)
    settings = make_settings(tmp_path, api.base_url)
    clock = FakeClock()
    try:
        async with open_core(settings, executor, clock) as opened:
            adapter = TelegramAdapter(opened, settings, monotonic=clock.monotonic)
            opened.register(adapter)
            await adapter.start()
            try:
                yield opened
            finally:
                await adapter.stop_intake()
                await adapter.aclose()
    finally:
        executor._gpu.shutdown(wait=True)
        executor._jpeg.shutdown(wait=True)


async def photo(api: FakeBotApi, core: Core, count: int) -> Call:
    calls = await api.wait_for("sendPhoto", count, within=120)
    await core.wait_until_idle(USER_KEY)
    return calls[count - 1]


async def press(api: FakeBotApi, data: str, on: Call, query_id: str) -> None:
    await api.push(callback_query(data, sent_message(on), from_user=ADA, query_id=query_id))
    await api.wait_for(
        "answerCallbackQuery", where=lambda c: c.params["callback_query_id"] == query_id
    )


def pixels(call: Call) -> np.ndarray[Any, Any]:
    with Image.open(io.BytesIO(call.files["photo"].data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float32)


async def test_grid_v2_u3_and_a_remix_on_the_tiny_model(api: FakeBotApi, core: Core) -> None:
    await api.push(command_message("/imagine a red fox --n 4 --seed 40", from_user=ADA))
    grid = await photo(api, core, 1)
    parent = await core.job(1)
    assert (parent.state, len(parent.images)) == (JobState.POSTED, 4)

    await press(api, "tb:v:1:2", grid, "v2")
    varied = await photo(api, core, 2)
    await press(api, "tb:u:1:3", grid, "u3")
    alone = await photo(api, core, 3)
    await api.push(text_reply("a blue fox --strength 0.6", sent_message(alone)))
    remixed = await photo(api, core, 4)

    vary, pick, remix = await core.job(2), await core.job(3), await core.job(4)
    assert (vary.spec.kind, vary.spec.init_image) == (JobKind.VARY, parent.images[1])
    assert (pick.spec.seed, pick.parent_job_id) == (42, 1)
    image_3 = core.image_file(pick)
    assert image_3 is not None
    assert alone.files["photo"].data == image_3.read_bytes()
    assert (remix.spec.kind, remix.spec.prompt, remix.parent_job_id) == (
        JobKind.REMIX,
        "a blue fox",
        3,
    )
    # Real pictures, each its own: the vary is not a copy of image 2, the remix not of image 3.
    assert float(np.abs(pixels(varied) - pixels(alone)).mean()) > 0
    assert float(np.abs(pixels(remixed) - pixels(alone)).mean()) > 0
    assert api.refusals() == []
