"""The core: a thin facade over admission → dispatch → delivery, with recovery and history.

:class:`Core` implements :class:`bot.ports.CoreApi` and (through
:class:`bot.community_calls.CommunityCalls`) :class:`bot.ports.CommunityApi` for every chat
adapter. Each part owns its own state:

* :class:`bot.intake.Admission`: intake open or closed, rate buckets, caps, held jobs;
* :class:`bot.dispatch.Dispatcher`: the fair queue, the executor's slots, retries;
* :class:`bot.delivery.Delivery`: notifiers, progress, post-at-most-once, failures;
* :class:`bot.recovery.Recovery`: unfinished jobs back on their path after a restart;
* :class:`bot.board.Board`: every unfinished job at its latest version.

Rules about existing jobs are :mod:`bot.access` (who may) and :mod:`bot.derive` (seeds); the
community features are :mod:`bot.community`; SQL is :mod:`bot.store`, image files
:mod:`bot.image_files`. Methods clean their input, call the part that owns the state, and
return what adapters may see.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

from bot import access, texts
from bot.admission import Limits
from bot.board import Board
from bot.clock import SystemClock
from bot.community import Community
from bot.community_calls import CommunityCalls, page_window
from bot.delivery import Delivery
from bot.derive import Iteration
from bot.dispatch import Dispatcher
from bot.domain import (
    DeriveKind,
    GenerateRequest,
    Job,
    JobAction,
    Language,
    Requester,
    StepRange,
    StyleChanges,
    StyleInfo,
    Ticket,
    VlmAvailability,
)
from bot.errors import NotAllowed, NotFound
from bot.i18n import msg
from bot.image_files import ImageFiles, ImageWriter, write_atomic
from bot.intake import Admission
from bot.lookup import Lookup
from bot.metrics import Metrics
from bot.newjobs import NewJobs
from bot.ports import Clock, Executor, Notifier
from bot.recovery import Recovery
from bot.safety import SafetyCheck, safety_config
from bot.slices import CoreSettings
from bot.store import Store, open_store, storage_error
from bot.validation import (
    NO_STYLE,
    check_job_id,
    clean_requester,
    resolve_style,
    sanitise_optional,
    sanitise_text,
)
from bot.vlm_jobs import VlmJobs, VlmLimits

log = logging.getLogger(__name__)

DB_NAME = "turbobot.db"
# Users whose rate bucket and default style stay in memory; the rest are read again from the
# database when they come back (each bucket is saved with every job).
MAX_CACHED_USERS = 10_000


class Core(CommunityCalls):
    """The one implementation of :class:`bot.ports.BotApi`. Build it with :func:`open_core`."""

    def __init__(
        self,
        settings: CoreSettings,
        executor: Executor,
        store: Store,
        clock: Clock,
        *,
        rng: random.Random | None = None,
        image_writer: ImageWriter = write_atomic,
        metrics: Metrics | None = None,
        storage_retry_s: float = 10.0,
        max_cached_users: int = MAX_CACHED_USERS,
    ) -> None:
        self._executor = executor
        self._store = store
        self._clock = clock
        self._rng = rng or random.Random()
        self._steps = settings.step_range  # Turbo's 1-8, or the base model's range
        self._operators = settings.operators
        self.metrics = metrics or Metrics()
        limits = Limits(
            rate_per_minute=settings.rate_per_minute,
            burst=settings.rate_burst,
            max_pending_per_user=settings.max_pending_per_user,
            max_pending_per_server=settings.max_pending_per_server,
            max_queue=settings.max_queue,
        )
        self._community = Community(store, clock, limits, max_cached_users)
        self._files = ImageFiles(settings.data_dir, image_writer)
        self._board = Board()
        self._admission = Admission(store, self._community, clock, limits, max_cached_users)
        release = self._admission.release
        self._delivery = Delivery(
            store,
            self._board,
            self._files,
            clock=clock,
            metrics=self.metrics,
            release=release,
            storage_retry_s=storage_retry_s,
        )
        self._dispatcher = Dispatcher(
            executor,
            store,
            self._board,
            delivery=self._delivery,
            files=self._files,
            clock=clock,
            metrics=self.metrics,
            release=release,
            max_attempts=settings.max_attempts,
            storage_retry_s=storage_retry_s,
            safety=SafetyCheck(executor, self._community, store, clock, safety_config(settings)),
            vlm=VlmJobs(executor, store, self._files, VlmLimits()),
        )
        self._lookup = Lookup(store, self._board, self._community, clock)
        self._new = NewJobs(
            store=store,
            files=self._files,
            admission=self._admission,
            dispatcher=self._dispatcher,
            delivery=self._delivery,
            board=self._board,
            executor=executor,
            community=self._community,
            clock=clock,
            rng=self._rng,
            steps=self._steps,
            max_images=settings.max_images,
            banned_words=settings.operator_banned_words,
            access_check=self._lookup.access,
        )
        self._recovery = Recovery(
            store,
            self._board,
            admission=self._admission,
            dispatcher=self._dispatcher,
            delivery=self._delivery,
            files=self._files,
            max_attempts=settings.max_attempts,
        )

    # --- lifecycle -------------------------------------------------------------------------

    def register(self, notifier: Notifier) -> None:
        """Route results for ``notifier.platform`` to it; hands over anything parked for it."""
        self._delivery.register(notifier)

    async def recover(self) -> None:
        """Put every unfinished job back on its path (see :mod:`bot.recovery`)."""
        await self._recovery.recover()

    def start(self) -> None:
        """Start the dispatcher (after :meth:`recover`)."""
        self._dispatcher.start()

    async def stop_intake(self) -> None:
        """Refuse new jobs (ShuttingDown) and start no more queued ones; they stay durable."""
        self._admission.open = False
        self._dispatcher.stop()

    async def drain(self, timeout_s: float | None = None) -> None:
        """Stop intake, let the jobs on the executor finish and their results be delivered."""
        await self.stop_intake()
        try:
            async with asyncio.timeout(timeout_s):
                while tasks := self._tasks():
                    # Shielded: on timeout they are cancelled below, after being counted.
                    await asyncio.gather(*map(asyncio.shield, tasks), return_exceptions=True)
        except TimeoutError:
            tasks = self._tasks()
            log.warning("shutdown: gave up waiting for %d task(s); they resume at next start",
                        len(tasks))  # fmt: skip
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _tasks(self) -> list[asyncio.Task[None]]:
        return [*self._dispatcher.tasks, *self._delivery.tasks]

    async def aclose(self, timeout_s: float | None = None) -> None:
        await self.drain(timeout_s)
        await self._dispatcher.aclose()

    def resume(self) -> None:
        """Retry now after a storage error instead of waiting for the back-off."""
        self._dispatcher.resume()

    async def wait_until_idle(self, user_key: str) -> None:
        """Return once ``user_key`` has no unfinished job (queued, running, or being posted)."""
        await self._board.wait_until_idle(user_key)

    def cache_sizes(self) -> dict[str, int]:
        """Entries of every per-user or per-server cache in memory (all of them bounded)."""
        return {**self._admission.cache_sizes(), **self._community.cache_sizes()}

    @property
    def healthy(self) -> bool:
        return self._dispatcher.alive

    # --- CoreApi: requests -----------------------------------------------------------------

    async def submit(self, request: GenerateRequest, *, image: bytes | None = None) -> Ticket:
        """A new job: text-to-image, or (``image``: a user's file) image-to-image."""
        return await self._new.submit(request, image=image)

    async def describe(self, requester: Requester, image: bytes, language: Language) -> Ticket:
        """A describe of the user's picture: a durable job in the same fair queue."""
        return await self._new.describe(requester, image, Language(language))

    def vlm_availability(self) -> VlmAvailability:
        return self._executor.vlm_availability()

    async def derive(
        self,
        requester: Requester,
        job_id: int,
        kind: DeriveKind,
        *,
        style: str | None = None,
        image: int = 1,
        prompt: str | None = None,
        strength: float | None = None,
    ) -> Ticket:
        """The one path for every derived image (the rules: :mod:`bot.derive`)."""
        wanted = Iteration(index=image, prompt=prompt, strength=strength)
        return await self._new.derive(requester, job_id, kind, wanted, style)

    async def lineage(self, requester: Requester, job_id: int) -> list[Job]:
        """The jobs ``job_id`` was made from, nearest first (see :mod:`bot.lookup`)."""
        return await self._lookup.lineage(clean_requester(requester), job_id)

    async def cancel(self, requester: Requester, job_id: int | None) -> Job:
        requester = clean_requester(requester)
        if job_id is None:
            job_id = self._newest_waiting(requester)
        job = self._board.get(check_job_id(job_id)) or await self._lookup.visible_job(job_id)
        if job.requester.user_key != requester.user_key:
            raise NotAllowed(texts.not_yours_to_cancel(job_id))
        return access.outward(await self._dispatcher.cancel(job))

    def _newest_waiting(self, requester: Requester) -> int:
        """What ``/cancel`` alone means on every platform: the requester's newest waiting job."""
        waiting = [j.id for j in self._dispatcher.queue.jobs_of(requester.user_key)]
        if not waiting:
            raise NotFound(texts.nothing_to_cancel())
        return max(waiting)

    async def queue_of(self, requester: Requester) -> list[tuple[Job, int]]:
        entries = self._dispatcher.jobs_of(clean_requester(requester).user_key)
        return [(access.outward(j), position) for j, position in entries]

    async def history(self, requester: Requester, *, limit: int = 10, offset: int = 0) -> list[Job]:
        key = clean_requester(requester).user_key
        jobs = await self._store.history(key, *page_window(limit, offset))
        return [access.outward(j) for j in jobs]

    async def server_history(
        self, server_key: str, *, limit: int = 10, offset: int = 0
    ) -> list[Job]:
        key = sanitise_text(server_key)
        jobs = await self._store.server_history(key, *page_window(limit, offset))
        return [access.outward(j) for j in jobs]

    async def job(self, job_id: int) -> Job:
        """A job by id with no permission check: for operators' tools, never for a user
        (adapters ask :meth:`job_for`)."""
        return access.outward(await self._lookup.any_job(job_id))

    async def job_for(self, requester: Requester, job_id: int, action: JobAction) -> Job:
        """The job as ``requester`` may see it for ``action`` (the rule: :mod:`bot.access`);
        ``SHOW`` also spends a token of the requester's re-post rate limit."""
        return await self._lookup.job_for(clean_requester(requester), job_id, action)

    async def delete(self, requester: Requester, job_id: int, *, is_admin: bool = False) -> Job:
        requester = clean_requester(requester)
        job = await self._lookup.visible_job(job_id)
        by_admin = job.requester.user_key != requester.user_key
        if by_admin and not (is_admin and job.requester.server_key == requester.server_key):
            # An admin's rights end at their own server's images.
            raise NotAllowed(texts.NOT_OWNER_DELETE)
        if job_id in self._board:
            raise NotAllowed(texts.not_finished(job_id))
        try:
            for relative in (job.image_path, *job.images):
                self._files.remove(relative)
        except OSError as err:
            raise storage_error(err, msg("core.op.delete_image", job=job_id)) from err
        now = self._clock.now()
        await self._store.update_job(
            job_id, deleted_at=now, image_path=None, prompt="", negative_prompt=None
        )
        if by_admin:
            await self._community.audit_delete(requester, job)
        return replace(
            job, image_path=None, spec=replace(job.spec, prompt="", negative_prompt=None)
        )

    def image_file(self, job: Job) -> Path | None:
        return self._files.find(job.image_path)

    def styles(self) -> list[StyleInfo]:
        return self._executor.styles()

    @property
    def step_range(self) -> StepRange:
        return self._steps

    async def rescan_styles(self, requester: Requester) -> StyleChanges:
        """Operators only (``TURBOBOT_OPERATOR_IDS``): the same rescan as ``SIGHUP``."""
        if (requester.platform, requester.user_id) not in self._operators:
            raise NotAllowed(texts.OPERATORS_ONLY)
        return await rescan_styles(self._executor)

    async def set_default_style(self, requester: Requester, style: str | None) -> None:
        requester, style = clean_requester(requester), sanitise_optional(style)
        known = [s.name for s in self._executor.styles()]
        name = None if style is None or style.strip().lower() in NO_STYLE else style
        resolved = None if name is None else resolve_style(name, None, known)
        await self._admission.set_default_style(requester.user_key, resolved)

    async def default_style(self, requester: Requester) -> str | None:
        return await self._admission.default_style(clean_requester(requester).user_key)

    def eta_for_position(self, position: int) -> float:
        return self._dispatcher.eta_for_position(position)


async def rescan_styles(executor: Executor) -> StyleChanges:
    """The one style rescan (``SIGHUP`` and ``/styles rescan``): the model stays loaded."""
    before = {s.name for s in executor.styles()}
    scan = await executor.rescan_styles()
    after = [s.name for s in scan.styles]
    return StyleChanges(
        added=tuple(n for n in after if n not in before),
        removed=tuple(sorted(before - set(after))),
        styles=tuple(after),
        refused=scan.refused,
    )


@contextlib.asynccontextmanager
async def open_core(
    settings: CoreSettings,
    executor: Executor,
    clock: Clock | None = None,
    *,
    rng: random.Random | None = None,
    image_writer: ImageWriter = write_atomic,
    metrics: Metrics | None = None,
    drain_timeout_s: float = 120.0,
    busy_timeout_ms: int = 5000,
    max_cached_users: int = MAX_CACHED_USERS,
) -> AsyncIterator[Core]:
    """Open the store (migrating it), recover, start dispatching; on exit drain and close.

    Exit stops intake, lets the job(s) on the executor finish, delivers what was generated
    (to registered notifiers) and closes the database. Queued jobs stay in the database.
    """
    async with open_store(settings.data_dir / DB_NAME, busy_timeout_ms=busy_timeout_ms) as store:
        core = Core(
            settings,
            executor,
            store,
            clock or SystemClock(),
            rng=rng,
            image_writer=image_writer,
            metrics=metrics,
            max_cached_users=max_cached_users,
        )
        await core.recover()
        core.start()
        try:
            yield core
        finally:
            await core.aclose(drain_timeout_s)
