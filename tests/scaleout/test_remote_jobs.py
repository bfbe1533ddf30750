"""Issue 13's jobs on the worker pool: ``n``, the kind, the strength and the init image travel
to the worker (the image as bytes, capped: the worker has its own disk), and every image comes
back. Against a real Redis; the worker's engine is a fake that reads its input as the local
engine does, from inside its own data dir."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from bot.config import Settings
from bot.domain import MAX_INPUT_BYTES, Generated, GenerationSpec, JobKind
from bot.errors import GenerationFailed
from bot.ports import ProgressCallback
from bot.testing.executor import FakeExecutor
from engine.pool.remote import open_remote_executor
from engine.pool.wire import INPUT_PREFIX
from tests.scaleout.conftest import RedisServer, pool_settings
from tests.scaleout.test_remote import SPEC, no_progress, worker

INIT = b"\xff\xd8 the parent image's bytes \xff\xd9"


@dataclass
class InputReader(FakeExecutor):
    """Records, per job, the spec and the bytes found at its ``init_image`` (data dir)."""

    data_dir: Path = Path()
    inputs: list[tuple[GenerationSpec, bytes | None, bool]] = field(default_factory=list)

    async def generate(
        self, job_id: int, spec: GenerationSpec, on_progress: ProgressCallback
    ) -> Generated:
        path = self.data_dir / spec.init_image if spec.init_image else None
        data = path.read_bytes() if path is not None else None
        inside = path is not None and path.resolve().is_relative_to(self.data_dir.resolve())
        self.inputs.append((spec, data, inside))
        return await super().generate(job_id, spec, on_progress)


@pytest.fixture
def bot_settings(tmp_path: Path, redis_server: RedisServer) -> Settings:
    redis_server.client().flushall()
    return pool_settings(tmp_path / "bot", redis_server.url)


@pytest.fixture
def worker_settings(tmp_path: Path, redis_server: RedisServer) -> Settings:
    """Another data dir: the worker cannot read the bot's files, only what it is sent."""
    return pool_settings(tmp_path / "worker", redis_server.url)


def parent_image(settings: Settings, data: bytes = INIT) -> str:
    relative = "images/7.jpg"
    path = settings.data_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return relative


async def test_a_vary_job_reaches_the_worker_whole_and_all_its_images_come_back(
    bot_settings: Settings, worker_settings: Settings, redis_server: RedisServer
) -> None:
    spec = replace(
        SPEC, n=4, kind=JobKind.VARY, strength=0.35, init_image=parent_image(bot_settings)
    )
    engine = InputReader(data_dir=worker_settings.data_dir)
    async with (
        open_remote_executor(bot_settings) as executor,  # type: ignore[arg-type]
        worker(worker_settings, "a", engine),
    ):
        result = await executor.generate(31, spec, no_progress)
    ((seen, data, inside),) = engine.inputs
    assert (seen.n, seen.kind, seen.strength, seen.seed) == (4, JobKind.VARY, 0.35, SPEC.seed)
    assert data == INIT
    assert inside
    assert seen.init_image != spec.init_image  # the worker's own copy, not the bot's path
    assert len(result.images) == 4
    assert len(set(result.images)) == 4  # one per seed, none lost or repeated
    # Nothing is left behind: the worker's copy and the bytes in Redis are gone.
    assert not (worker_settings.data_dir / (seen.init_image or "")).exists()
    assert redis_server.client().keys(INPUT_PREFIX + "*") == []


async def test_a_txt2img_job_sends_no_input(
    bot_settings: Settings, worker_settings: Settings
) -> None:
    engine = InputReader(data_dir=worker_settings.data_dir)
    async with (
        open_remote_executor(bot_settings) as executor,  # type: ignore[arg-type]
        worker(worker_settings, "a", engine),
    ):
        result = await executor.generate(32, replace(SPEC, n=2), no_progress)
    ((seen, data, _),) = engine.inputs
    assert (seen.init_image, data, seen.kind) == (None, None, JobKind.TXT2IMG)
    assert len(result.images) == 2


async def test_an_init_image_over_the_cap_or_outside_the_data_dir_never_travels(
    bot_settings: Settings, redis_server: RedisServer
) -> None:
    relative = parent_image(bot_settings)
    with (bot_settings.data_dir / relative).open("r+b") as f:
        f.truncate(MAX_INPUT_BYTES + 1)  # sparse: the cap is checked before reading
    async with open_remote_executor(bot_settings) as executor:  # type: ignore[arg-type]
        for init in (relative, "../outside.jpg", "images/missing.jpg"):
            spec = replace(SPEC, kind=JobKind.IMG2IMG, init_image=init, strength=0.5)
            with pytest.raises(GenerationFailed):
                await executor.generate(33, spec, no_progress)
    client = redis_server.client()
    assert client.keys(INPUT_PREFIX + "*") == []
    assert client.zcard("turbobot:queue") == 0  # nothing was queued for a worker
