"""The iteration loop through the core on the real tiny pipeline (issue 13): several images
and their grid, pick, vary, remix, upscale, a user's own image, durability and lineage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from bot.access import HIDDEN_PROMPT
from bot.domain import DeriveKind, Generated, GenerationSpec, Job, JobKind, JobState
from bot.errors import BadRequest, NotFound, QueueFull, RateLimited, TurbobotError
from bot.ports import ProgressCallback
from bot.service import Core
from bot.testing.executor import FakeExecutor
from engine.executors import LocalExecutor
from engine.loading import load_engine
from engine.pipeline import Engine
from tests.core.conftest import OpenCore, request, user
from tests.core.test_images import encoded, png_header_only
from tests.engine.conftest import TEST_SIDE, tiny_settings
from tests.fakes import RecordingNotifier

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def tiny_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return load_engine(tiny_settings(tmp_path_factory.mktemp("tiny")))


class CountingExecutor:
    """The real local executor on the tiny engine, counting the specs it was given."""

    def __init__(self, engine: Engine) -> None:
        self.inner = LocalExecutor(engine, jpeg_quality=95)
        self.specs: list[GenerationSpec] = []

    @property
    def capacity(self) -> int:
        return self.inner.capacity

    async def generate(
        self, job_id: int, spec: GenerationSpec, on_progress: ProgressCallback
    ) -> Generated:
        self.specs.append(spec)
        return await self.inner.generate(job_id, spec, on_progress)

    def styles(self) -> Any:
        return self.inner.styles()

    def vlm_availability(self) -> Any:
        return self.inner.vlm_availability()

    async def describe(self, job_id: int, image: bytes, language: Any, **limits: Any) -> str:
        return await self.inner.describe(job_id, image, language, **limits)

    async def enhance(self, job_id: int, prompt: str, **limits: Any) -> str:
        return await self.inner.enhance(job_id, prompt, **limits)

    async def rescan_styles(self) -> Any:
        return await self.inner.rescan_styles()

    async def check_image(self, job_id: int, jpeg: bytes, policy: str) -> Any:
        return await self.inner.check_image(job_id, jpeg, policy)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def tiny(tiny_engine: Engine, tmp_path: Path) -> Iterator[CountingExecutor]:
    tiny_engine.data_dir = tmp_path / "data"  # the core's data dir: input images are there
    executor = CountingExecutor(tiny_engine)
    yield executor
    executor.inner._gpu.shutdown(wait=True)
    executor.inner._jpeg.shutdown(wait=True)


@pytest.fixture
async def core(open_test_core: OpenCore, tiny: CountingExecutor) -> AsyncIterator[Core]:
    async with open_test_core(executor=tiny) as opened:
        yield opened


ALICE = user("alice")


async def finished(core: Core, job_id: int) -> Job:
    job = await core.job(job_id)
    await core.wait_until_idle(job.requester.user_key)
    return await core.job(job_id)


def pixels(core: Core, job: Job) -> np.ndarray[Any, Any]:
    path = core.image_file(job)
    assert path is not None
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float32)


def content(path: Path | None) -> bytes:
    """A file's bytes (sync on purpose: tiny files, read in tests)."""
    assert path is not None
    return path.read_bytes()


def size_of(path: Path | None) -> tuple[int, int]:
    assert path is not None
    with Image.open(path) as image:
        return image.size


async def test_four_images_give_four_files_and_a_grid(core: Core, tiny: CountingExecutor) -> None:
    ticket = await core.submit(request(ALICE, n=4, seed=11))
    job = await finished(core, ticket.job.id)
    assert job.state is JobState.POSTED
    assert len(tiny.specs) == 1  # one batched call, not four
    assert len(set(job.images)) == 4
    files = [core._files.find(p) for p in job.images]
    assert {size_of(f) for f in files} == {(TEST_SIDE, TEST_SIDE)}
    assert size_of(core.image_file(job)) == (TEST_SIDE, TEST_SIDE)  # 2x2 cells of half size
    assert job.image_path not in job.images
    assert len({content(f) for f in files}) == 4  # four seeds, four pictures


async def test_pick_posts_image_k_alone_without_gpu_work(
    core: Core, tiny: CountingExecutor
) -> None:
    parent = await finished(core, (await core.submit(request(ALICE, n=4, seed=20))).job.id)
    ticket = await core.derive(ALICE, parent.id, DeriveKind.PICK, image=3)
    assert ticket.position == 0
    picked = await finished(core, ticket.job.id)
    assert picked.state is JobState.POSTED
    assert len(tiny.specs) == 1  # the parent's only
    assert (picked.spec.n, picked.spec.seed, picked.parent_job_id) == (1, 22, parent.id)
    assert content(core.image_file(picked)) == content(core._files.find(parent.images[2]))
    assert picked.image_path != parent.images[2]  # its own copy: outlives the parent
    with pytest.raises(BadRequest):
        await core.derive(ALICE, parent.id, DeriveKind.PICK, image=5)


async def test_a_variation_is_closer_to_its_parent_than_a_reroll(core: Core) -> None:
    parent = await finished(core, (await core.submit(request(ALICE, seed=5))).job.id)
    vary = await finished(
        core, (await core.derive(ALICE, parent.id, DeriveKind.VARY_SUBTLE)).job.id
    )
    reroll = await finished(core, (await core.derive(ALICE, parent.id, DeriveKind.REROLL)).job.id)
    assert (vary.spec.kind, vary.spec.init_image) == (JobKind.VARY, parent.image_path)
    assert vary.spec.seed != parent.spec.seed  # a fresh seed
    base = pixels(core, parent)
    near = float(np.abs(pixels(core, vary) - base).mean())
    far = float(np.abs(pixels(core, reroll) - base).mean())
    assert 0.0 < near < far


async def test_remix_of_image_k_takes_an_edited_prompt_and_strength(core: Core) -> None:
    parent = await finished(core, (await core.submit(request(ALICE, n=2, seed=9))).job.id)
    ticket = await core.derive(
        ALICE, parent.id, DeriveKind.REMIX, image=2, prompt="a blue fox", strength=0.5
    )
    remix = await finished(core, ticket.job.id)
    assert remix.state is JobState.POSTED
    spec = remix.spec
    assert (spec.kind, spec.prompt, spec.strength) == (JobKind.REMIX, "a blue fox", 0.5)
    assert (spec.init_image, spec.seed) == (parent.images[1], 10)
    with pytest.raises(BadRequest):
        await core.derive(ALICE, parent.id, DeriveKind.REMIX, prompt="x", strength=3.0)


async def test_an_upscale_is_larger(core: Core) -> None:
    parent = await finished(core, (await core.submit(request(ALICE, seed=3))).job.id)
    up = await finished(
        core, (await core.derive(ALICE, parent.id, DeriveKind.UPSCALE_CREATIVE)).job.id
    )
    assert (up.spec.kind, up.spec.strength) == (JobKind.UPSCALE, 0.5)
    assert pixels(core, up).shape[:2] == (TEST_SIDE * 3 // 2, TEST_SIDE * 3 // 2)


async def test_an_image_input_job_from_bytes(core: Core) -> None:
    upload = encoded(Image.new("RGB", (300, 200), (200, 40, 40)), "PNG")
    ticket = await core.submit(request(ALICE, strength=0.8), image=upload)
    job = await finished(core, ticket.job.id)
    assert job.state is JobState.POSTED
    assert (job.spec.kind, job.spec.aspect, job.spec.strength) == (JobKind.IMG2IMG, "3:2", 0.8)
    assert (job.spec.init_image or "").startswith("inputs/")
    assert core._files.find(job.spec.init_image) is not None


BAD_FILES = {
    "empty": b"",
    "not an image": b"%PDF-1.4 not a picture",
    "bomb": png_header_only(20_000, 20_000),
    "too small": encoded(Image.new("RGB", (10, 10)), "PNG"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
async def test_a_bad_input_file_is_refused_and_nothing_queued(core: Core, name: str) -> None:
    with pytest.raises(BadRequest) as caught:
        await core.submit(request(ALICE), image=BAD_FILES[name])
    assert str(caught.value)
    assert await core.history(ALICE) == []


async def test_a_strength_without_an_image_is_refused(core: Core) -> None:
    with pytest.raises(BadRequest):
        await core.submit(request(ALICE, strength=0.5))


async def test_a_vary_job_survives_a_restart(
    open_test_core: OpenCore, tiny: CountingExecutor
) -> None:
    held = FakeExecutor(gate=asyncio.Event())
    async with open_test_core(executor=FakeExecutor()) as core:
        parent = await finished(core, (await core.submit(request(ALICE, seed=1))).job.id)
    notifier = RecordingNotifier()
    async with open_test_core(executor=held, notifiers=(notifier,)) as core:
        ticket = await core.derive(ALICE, parent.id, DeriveKind.VARY_STRONG)
        await core.drain(0)  # stopped mid-run: the row says running
    assert notifier.delivered == []
    notifier = RecordingNotifier()
    async with open_test_core(executor=tiny, notifiers=(notifier,)) as core:
        job = await finished(core, ticket.job.id)
    assert (job.state, job.parent_job_id) == (JobState.POSTED, parent.id)
    assert (job.spec.kind, job.spec.strength) == (JobKind.VARY, 0.7)
    assert job.spec.init_image == parent.image_path
    assert [j for j, _ in notifier.delivered] == [job.id]  # posted once


async def test_lineage_follows_parents_and_keeps_a_hidden_prompt_hidden(
    open_test_core: OpenCore,
) -> None:
    alice, bob, carol = user("alice", "s1"), user("bob", "s1"), user("carol", "s2")
    async with open_test_core(executor=FakeExecutor()) as core:
        await core.set_privacy(alice, hide_details=True)
        first = await finished(core, (await core.submit(request(alice, "secret"))).job.id)
        second = await finished(
            core, (await core.derive(bob, first.id, DeriveKind.VARY_SUBTLE)).job.id
        )
        third = await finished(core, (await core.derive(bob, second.id, DeriveKind.REROLL)).job.id)
        chain = await core.lineage(bob, third.id)
        assert [j.id for j in chain] == [second.id, first.id]
        assert all(j.spec.prompt == HIDDEN_PROMPT for j in chain)
        assert [j.id for j in await core.lineage(alice, first.id)] == []
        with pytest.raises(NotFound):
            await core.lineage(carol, third.id)


async def test_a_deleted_parent_ends_the_chain(open_test_core: OpenCore) -> None:
    async with open_test_core(executor=FakeExecutor()) as core:
        first = await finished(core, (await core.submit(request(ALICE))).job.id)
        second = await finished(
            core, (await core.derive(ALICE, first.id, DeriveKind.REROLL)).job.id
        )
        third = await finished(
            core, (await core.derive(ALICE, second.id, DeriveKind.REROLL)).job.id
        )
        await core.delete(ALICE, second.id)
        assert await core.lineage(ALICE, third.id) == []


async def test_images_count_against_the_rate_limit_and_the_cap(open_test_core: OpenCore) -> None:
    gate = asyncio.Event()
    async with open_test_core(
        executor=FakeExecutor(gate=gate), TURBOBOT_MAX_PENDING_PER_USER=4
    ) as core:
        await core.submit(request(ALICE, n=4))  # alone, four images fit the cap of four
        with pytest.raises(QueueFull):
            await core.submit(request(ALICE))
        gate.set()


async def test_forget_removes_every_image_and_the_users_own_inputs(core: Core) -> None:
    several = await finished(core, (await core.submit(request(ALICE, n=2))).job.id)
    upload = encoded(Image.new("RGB", (200, 200), (10, 200, 40)), "PNG")
    own = await finished(core, (await core.submit(request(ALICE), image=upload)).job.id)
    files = [*several.images, several.image_path, own.spec.init_image]
    assert all(core._files.find(f) is not None for f in files)
    assert await core.forget(ALICE) == 2
    assert [f for f in files if core._files.find(f) is not None] == []


async def test_deleting_a_job_removes_its_images(core: Core) -> None:
    job = await finished(core, (await core.submit(request(ALICE, n=3))).job.id)
    await core.delete(ALICE, job.id)
    assert [f for f in job.images if core._files.find(f) is not None] == []


async def test_a_four_image_job_spends_four_tokens(open_test_core: OpenCore) -> None:
    async with open_test_core(
        executor=FakeExecutor(), TURBOBOT_RATE_BURST=5, TURBOBOT_RATE_PER_MINUTE=1
    ) as core:
        await core.submit(request(ALICE, n=4))
        await core.submit(request(ALICE))  # the fifth token
        with pytest.raises(RateLimited):
            await core.submit(request(ALICE))


async def test_a_job_must_fit_its_images_under_the_cap(open_test_core: OpenCore) -> None:
    gate = asyncio.Event()
    async with open_test_core(
        executor=FakeExecutor(gate=gate), TURBOBOT_MAX_PENDING_PER_USER=4
    ) as core:
        await core.submit(request(ALICE))
        await core.submit(request(ALICE, n=2))  # three images held
        with pytest.raises(QueueFull):
            await core.submit(request(ALICE, n=2))
        await core.submit(request(ALICE))  # the fourth fits
        gate.set()


async def test_an_upload_refused_by_the_rules_is_not_stored(
    open_test_core: OpenCore, tmp_path: Path
) -> None:
    upload = encoded(Image.new("RGB", (200, 200), (90, 90, 200)), "PNG")
    async with open_test_core(executor=FakeExecutor(), TURBOBOT_BANNED_WORDS="dragon") as core:
        with pytest.raises(TurbobotError):
            await core.submit(request(ALICE, "a dragon"), image=upload)
    assert not list((tmp_path / "data").glob("inputs/**/*.jpg"))
