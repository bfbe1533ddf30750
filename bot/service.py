"""The core service: admission → fair durable queue → one executor → delivery, with history.

:class:`Core` implements :class:`bot.ports.CoreApi` for every chat adapter. A job's life:

* ``submit`` validates, admits (rate bucket, caps) and commits the row before answering;
* the dispatcher keeps up to ``executor.capacity`` jobs on the executor, in fair order;
* the finished JPEG is written atomically while the row becomes ``posting``, and delivery runs
  in the job's own task, so writing and posting job N overlap generating job N+1;
* posting is at-most-once: ``posting`` is committed before the send, ``posted`` after.

After a crash, :meth:`Core.recover` puts each unfinished job back on its path (see there).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter, defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bot import access, community, texts
from bot.admission import (
    Bucket,
    Limits,
    Pending,
    check_caps,
    full_bucket,
    take_token,
    wait_text,
)
from bot.clock import SystemClock
from bot.community import Community
from bot.config import Settings
from bot.domain import (
    AuditEntry,
    GalleryItem,
    Generated,
    GenerateRequest,
    GenerationSpec,
    Job,
    JobAction,
    JobState,
    Platform,
    Requester,
    ServerSettings,
    SettingsChange,
    ShareTicket,
    StyleInfo,
    Ticket,
    UserPrivacy,
)
from bot.errors import (
    GenerationFailed,
    NotAllowed,
    NotFound,
    RateLimited,
    ShuttingDown,
    StorageError,
    TurbobotError,
)
from bot.fairqueue import FairQueue
from bot.lru import LruDict
from bot.metrics import Metrics
from bot.ports import Clock, Executor, GalleryPeriod, GallerySort, Notifier, ProgressCallback
from bot.store import (
    ImageWriter,
    Store,
    discard_prepared,
    open_store,
    prepare_image,
    storage_error,
    write_atomic,
)
from bot.validation import (
    NO_STYLE,
    check_job_id,
    clean_change,
    clean_request,
    clean_requester,
    resolve_style,
    sanitise_optional,
    sanitise_text,
    validate,
)

log = logging.getLogger(__name__)

DB_NAME = "turbobot.db"
# Until a job has finished, guess this many seconds per job (a 4-step image on a mid-range GPU).
INITIAL_JOB_ESTIMATE_S = 8.0
_RECENT_JOBS = 20  # ETA = moving average over this many recent job durations
# Users whose rate bucket and default style stay in memory; the rest are read again from the
# database when they come back (each bucket is saved with every job).
MAX_CACHED_USERS = 10_000
# Posting an image again (Discord /show, Telegram "Original file") costs a token of its own.
SHOW_LIMITS = Limits(
    rate_per_minute=4.0, burst=5, max_pending_per_user=1, max_pending_per_server=1, max_queue=1
)
_SHOW_BUCKET = "show:"  # prefix of the re-post bucket's key in rate_buckets


class _ProgressPump:
    """Forwards one job's progress in order, skipping steps a slow platform cannot keep up with."""

    def __init__(self, send: Callable[[int, int], Awaitable[None]]) -> None:
        self._send = send
        self._latest: tuple[int, int] | None = None
        self._task: asyncio.Task[None] | None = None

    def push(self, step: int, total: int) -> None:
        self._latest = (step, total)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self._latest is not None:
            step, total = self._latest
            self._latest = None
            try:
                await self._send(step, total)
            except Exception:
                log.exception("progress update failed (ignored)")

    async def drain(self) -> None:
        # Progress callbacks posted from the executor's thread land on the loop in order;
        # one turn of the loop lets the last of them arrive before the final message.
        await asyncio.sleep(0)
        if self._task is not None:
            await self._task


@dataclass(frozen=True, slots=True)
class _Parked:
    """A message for a platform whose adapter is not registered yet (e.g. during recovery)."""

    job: Job
    failure: str | None  # None: deliver the image


class Core:
    """The one implementation of :class:`bot.ports.CoreApi`. Build it with :func:`open_core`."""

    def __init__(
        self,
        settings: Settings,
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
        self._settings = settings
        self._executor = executor
        self._store = store
        self._clock = clock
        self._rng = rng or random.Random()
        self._write_image = image_writer
        self.metrics = metrics or Metrics()
        self._storage_retry_s = storage_retry_s
        self._limits = Limits(
            rate_per_minute=settings.rate_per_minute,
            burst=settings.rate_burst,
            max_pending_per_user=settings.max_pending_per_user,
            max_pending_per_server=settings.max_pending_per_server,
            max_queue=settings.max_queue,
        )
        self._community = Community(store, clock, self._limits, max_cached_users)
        self._data_dir = settings.data_dir.resolve()
        self._notifiers: dict[Platform, Notifier] = {}
        self._parked: defaultdict[Platform, list[_Parked]] = defaultdict(list)
        self._queue = FairQueue()
        self._running: dict[int, Job] = {}  # on the executor now
        self._active: dict[int, Job] = {}  # every job not yet final, latest version
        self._held: dict[int, Job] = {}  # counted against caps: queued or running
        self._held_user: Counter[str] = Counter()
        self._held_server: Counter[str] = Counter()
        self._buckets: LruDict[str, Bucket] = LruDict(max_cached_users)
        self._default_styles: LruDict[str, str | None] = LruDict(max_cached_users)
        self._loading: dict[str, asyncio.Task[tuple[Bucket | None, str | None]]] = {}
        self._durations: deque[float] = deque(maxlen=_RECENT_JOBS)
        self._pumps: dict[int, _ProgressPump] = {}
        self._idle_waiters: list[tuple[str, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._intake_open = True
        self._dispatching = True
        self._paused = False
        self._dispatcher: asyncio.Task[None] | None = None
        self._job_tasks: set[asyncio.Task[None]] = set()
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._busy_since: float | None = None

    # --- wiring ----------------------------------------------------------------------------

    def register(self, notifier: Notifier) -> None:
        """Route results for ``notifier.platform`` to it; hands over anything parked for it."""
        self._notifiers[notifier.platform] = notifier
        for parked in self._parked.pop(notifier.platform, []):
            if parked.failure is None:
                self._schedule_delivery(parked.job)
            else:
                self._spawn(self._tell_failed(parked.job, parked.failure))

    def start(self) -> None:
        """Start the dispatcher (after :meth:`recover`)."""
        if self._dispatcher is None:
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch_loop())

    async def stop_intake(self) -> None:
        """Refuse new jobs (ShuttingDown) and start no more queued ones; they stay durable."""
        self._intake_open = False
        self._dispatching = False
        self._wake.set()

    async def drain(self, timeout_s: float | None = None) -> None:
        """Stop intake, let the jobs on the executor finish and their results be delivered."""
        await self.stop_intake()
        try:
            async with asyncio.timeout(timeout_s):
                while tasks := [*self._job_tasks, *self._side_tasks]:
                    # Shielded: on timeout they are cancelled below, after being counted.
                    await asyncio.gather(*map(asyncio.shield, tasks), return_exceptions=True)
        except TimeoutError:
            tasks = [*self._job_tasks, *self._side_tasks]
            log.warning("shutdown: gave up waiting for %d task(s); they resume at next start",
                        len(tasks))  # fmt: skip
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def aclose(self, timeout_s: float | None = None) -> None:
        await self.drain(timeout_s)
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher

    def resume(self) -> None:
        """Retry now after a storage error instead of waiting for the back-off."""
        self._paused = False
        self._wake.set()

    async def wait_until_idle(self, user_key: str) -> None:
        """Return once ``user_key`` has no unfinished job (queued, running, or being posted)."""
        if not self._has_active(user_key):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._idle_waiters.append((user_key, future))
        await future

    def cache_sizes(self) -> dict[str, int]:
        """Entries of every per-user or per-server cache in memory (all of them bounded)."""
        return {
            "buckets": len(self._buckets),
            "default_styles": len(self._default_styles),
            "held_users": len(self._held_user),
            "held_servers": len(self._held_server),
            **self._community.cache_sizes(),
        }

    @property
    def healthy(self) -> bool:
        return self._dispatcher is not None and not self._dispatcher.done() and not self._paused

    # --- CoreApi: requests -----------------------------------------------------------------

    async def submit(self, request: GenerateRequest) -> Ticket:
        self._check_open()
        request = clean_request(request)
        who = request.requester
        server = await self._admit(who)
        styles = self._executor.styles()
        usable = community.usable_styles(styles, server, who.channel_nsfw)
        default = community.pick_default(await self.default_style(who), server, usable)
        known = [s.name for s in styles]
        spec = validate(request, known_styles=known, default_style=default, rng=self._rng)
        self._check_rules(who, spec, server, styles)
        return await self._enqueue(who, spec, request.parent_job_id, server)

    async def derive(
        self,
        requester: Requester,
        job_id: int,
        *,
        seed: int | None = None,
        style: str | None = None,
        keep_seed: bool = False,
    ) -> Ticket:
        self._check_open()
        requester = clean_requester(requester)
        server = await self._admit(requester)
        parent, seen = await self._access(requester, job_id, JobAction.DERIVE)
        return await self._derive(
            requester, server, parent, seen, seed=seed, style=style, keep_seed=keep_seed
        )

    async def _derive(
        self,
        requester: Requester,
        server: ServerSettings | None,
        parent: Job,
        seen: Job,
        *,
        seed: int | None,
        style: str | None,
        keep_seed: bool,
    ) -> Ticket:
        """A new job from ``parent`` (as stored), hidden when ``seen`` (as shown) is."""
        styles = self._executor.styles()
        known = [s.name for s in styles]
        style = sanitise_optional(style)
        new_style = parent.spec.style if style is None else resolve_style(style, None, known)
        if seed is None:
            seed = parent.spec.seed if keep_seed else self._rng.randint(0, 2**32 - 1)
        spec = replace(parent.spec, seed=seed, style=new_style)
        request = GenerateRequest(
            requester=requester,
            prompt=spec.prompt,
            style=spec.style or "none",
            seed=spec.seed,
            steps=spec.steps,
            aspect=spec.aspect,
            cfg=spec.cfg,
            negative_prompt=spec.negative_prompt,
            parent_job_id=parent.id,
        )
        # The parent's settings pass validation again: limits may have changed since.
        checked = validate(request, known_styles=known, default_style=None, rng=self._rng)
        self._check_rules(requester, checked, server, styles)
        return await self._enqueue(requester, checked, parent.id, server, seen.details_hidden)

    async def cancel(self, requester: Requester, job_id: int) -> Job:
        requester = clean_requester(requester)
        job = self._active.get(check_job_id(job_id)) or await self._visible_job(job_id)
        if job.requester.user_key != requester.user_key:
            raise NotAllowed(texts.not_yours_to_cancel(job_id))
        if job_id not in self._queue:
            raise NotAllowed(texts.cannot_cancel(job_id, job.state))
        removed = self._queue.remove(job_id)
        assert removed is not None  # noqa: S101 (checked just above, no await in between)
        cancelled = replace(removed, state=JobState.CANCELLED, finished_at=self._clock.now())
        try:
            await self._store.update_job(
                job_id, state=JobState.CANCELLED, finished_at=cancelled.finished_at
            )
        except StorageError:
            self._queue.push_front(removed)
            raise
        self._unhold(job_id)
        self._finish(cancelled)
        return access.outward(cancelled)

    async def queue_of(self, requester: Requester) -> list[tuple[Job, int]]:
        key = clean_requester(requester).user_key
        running = [(j, 0) for j in self._running.values() if j.requester.user_key == key]
        queued = [(j, self._queue.position(j.id)) for j in self._queue.jobs_of(key)]
        entries = sorted(running, key=lambda p: p[0].id) + queued
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
        job = self._active.get(check_job_id(job_id)) or await self._store.get_job(job_id)
        if job is None:
            raise NotFound(texts.no_such_job(job_id))
        return access.outward(job)

    async def job_for(self, requester: Requester, job_id: int, action: JobAction) -> Job:
        """The job as ``requester`` may see it for ``action`` (the rule: :mod:`bot.access`).

        ``SHOW`` (posting it again, sending its file) also spends a token of the requester's
        re-post rate limit.
        """
        requester = clean_requester(requester)
        _, seen = await self._access(requester, job_id, action)
        if action is JobAction.SHOW:
            await self._take_show_token(requester.user_key)
        return seen

    async def _access(
        self, requester: Requester, job_id: int, action: JobAction
    ) -> tuple[Job, Job]:
        """(the job as stored, the job as ``requester`` may see it) or NotFound / NotAllowed."""
        job = await self._store.get_job(check_job_id(job_id))
        if job is None:
            raise NotFound(texts.no_such_job(job_id))
        job = self._active.get(job_id, job)
        facts = access.Facts(
            deleted=await self._store.is_deleted(job_id),
            owner=await self._community.privacy(job.requester),
            shared_in=await self._community.shared_in(job_id),
        )
        return job, access.check_access(requester, job, action, facts)

    async def _take_show_token(self, user_key: str) -> None:
        key = _SHOW_BUCKET + user_key
        bucket = await self._store.bucket(key) or full_bucket(self._clock.now(), SHOW_LIMITS)
        try:
            spent = take_token(bucket, self._clock.now(), SHOW_LIMITS)
        except RateLimited as err:
            wait = wait_text(err.retry_after)
            raise RateLimited(texts.showing_too_fast(wait), err.retry_after) from None
        await self._store.save_bucket(key, spent)

    async def delete(self, requester: Requester, job_id: int, *, is_admin: bool = False) -> Job:
        requester = clean_requester(requester)
        job = await self._visible_job(job_id)
        by_admin = job.requester.user_key != requester.user_key
        if by_admin and not (is_admin and job.requester.server_key == requester.server_key):
            # An admin's rights end at their own server's images.
            raise NotAllowed(texts.NOT_OWNER_DELETE)
        if job_id in self._active:
            raise NotAllowed(texts.not_finished(job_id))
        path = self.image_file(job)
        try:
            if path is not None:
                path.unlink(missing_ok=True)
        except OSError as err:
            raise storage_error(err, f"delete the image of job #{job_id}") from err
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
        if job.image_path is None:
            return None
        path = self._data_dir / job.image_path
        return path if path.is_file() else None

    def styles(self) -> list[StyleInfo]:
        return self._executor.styles()

    async def set_default_style(self, requester: Requester, style: str | None) -> None:
        requester, style = clean_requester(requester), sanitise_optional(style)
        known = [s.name for s in self._executor.styles()]
        name = None if style is None or style.strip().lower() in NO_STYLE else style
        resolved = None if name is None else resolve_style(name, None, known)
        await self._store.set_default_style(requester.user_key, resolved)
        self._default_styles[requester.user_key] = resolved

    async def default_style(self, requester: Requester) -> str | None:
        key = clean_requester(requester).user_key
        if key not in self._default_styles:
            await self._load_user(key)
        return self._default_styles.get(key)

    def eta_for_position(self, position: int) -> float:
        """Jobs ahead finish at ``capacity`` per average job time; 0 when a slot is free."""
        capacity = max(1, self._executor.capacity)
        average = (
            sum(self._durations) / len(self._durations)
            if self._durations
            else INITIAL_JOB_ESTIMATE_S
        )
        waiting_for = len(self._running) + position - capacity
        return max(0.0, waiting_for * average / capacity)

    # --- CommunityApi (the logic lives in bot.community) ------------------------------------

    async def server_settings(self, platform: Platform, server_id: str) -> ServerSettings:
        return await self._community.server_settings(platform, sanitise_text(server_id))

    async def update_server_settings(
        self, actor: Requester, change: SettingsChange, *, is_admin: bool
    ) -> ServerSettings:
        known = [s.name for s in self._executor.styles()]
        actor, change = clean_requester(actor), clean_change(change)
        return await self._community.update_settings(actor, change, is_admin=is_admin, known=known)

    async def share(self, requester: Requester, job_id: int) -> ShareTicket:
        requester = clean_requester(requester)
        ticket = await self._community.share(requester, await self._visible_job(job_id))
        return replace(ticket, job=access.outward(ticket.job))

    async def record_share(self, share_id: int, message_id: str) -> None:
        await self._community.record_share(check_job_id(share_id), sanitise_text(message_id))

    async def share_by_message(self, platform: Platform, message_id: str) -> int | None:
        return await self._community.share_by_message(platform, sanitise_text(message_id))

    async def vote(self, voter: Requester, share_id: int, value: int) -> int:
        return await self._community.vote(clean_requester(voter), check_job_id(share_id), value)

    async def gallery(
        self,
        platform: Platform,
        server_id: str,
        *,
        sort: GallerySort = "recent",
        period: GalleryPeriod = "all",
        limit: int = 10,
        offset: int = 0,
    ) -> list[GalleryItem]:
        limit, offset = page_window(limit, offset)
        items = await self._community.gallery(
            platform, sanitise_text(server_id), sort=sort, period=period, limit=limit, offset=offset
        )
        return [replace(i, job=access.outward(i.job)) for i in items]

    async def remix(self, requester: Requester, job_id: int) -> Ticket:
        self._check_open()
        requester = clean_requester(requester)
        server = await self._admit(requester)
        parent, seen = await self._access(requester, job_id, JobAction.REMIX)
        return await self._derive(
            requester, server, parent, seen, seed=None, style=None, keep_seed=True
        )

    async def privacy(self, requester: Requester) -> UserPrivacy:
        return await self._community.privacy(clean_requester(requester))

    async def set_privacy(
        self,
        requester: Requester,
        *,
        share_opt_out: bool | None = None,
        hide_details: bool | None = None,
    ) -> UserPrivacy:
        requester = clean_requester(requester)
        updated, posts = await self._community.set_privacy(
            requester, share_opt_out=share_opt_out, hide_details=hide_details
        )
        self._delete_posts(requester.platform, posts)
        return updated

    async def forget(self, requester: Requester) -> int:
        requester = clean_requester(requester)
        if self._has_active(requester.user_key):
            raise NotAllowed(community.FORGET_BUSY)
        count, paths, posts = await self._community.forget(requester)
        self._delete_posts(requester.platform, posts)
        for relative in paths:
            path = self._data_dir / relative
            try:
                await asyncio.to_thread(path.unlink, missing_ok=True)
            except OSError as err:
                log.error("forget: could not delete an image file: %s", err)  # noqa: TRY400
        # The cached default style is the user's data too. The rate buckets stay (in memory,
        # and in the database under a digest of the user's key): forgetting is no way around
        # the rate limit, also not across a restart.
        self._default_styles.pop(requester.user_key, None)
        log.info("forgot a user: %d job(s)", count)
        return count

    def _delete_posts(self, platform: Platform, posts: list[tuple[str, str]]) -> None:
        """Ask the platform to delete the bot's own posts of a user who left (best effort)."""
        notifier = self._notifiers.get(platform)
        if notifier is not None and posts:
            self._spawn(_delete_messages(notifier, posts))

    async def set_blocked(
        self, actor: Requester, user_id: str, blocked: bool, *, is_admin: bool
    ) -> None:
        actor, user_id = clean_requester(actor), sanitise_text(user_id)
        await self._community.set_blocked(actor, user_id, blocked, is_admin=is_admin)

    async def audit_log(
        self, actor: Requester, *, is_admin: bool, limit: int = 20
    ) -> list[AuditEntry]:
        actor = clean_requester(actor)
        return await self._community.audit_log(actor, is_admin=is_admin, limit=limit)

    # --- admission -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if not self._intake_open:
            raise ShuttingDown(texts.SHUTTING_DOWN)

    async def _admit(self, requester: Requester) -> ServerSettings | None:
        """The requester's server settings, once it is sure they are not blocked there."""
        await self._community.check_not_blocked(requester)
        return await self._community.settings_for(requester)

    def _check_rules(
        self,
        requester: Requester,
        spec: GenerationSpec,
        server: ServerSettings | None,
        styles: list[StyleInfo],
    ) -> None:
        words = self._settings.operator_banned_words
        community.check_spec(requester, spec, server, styles, words)

    async def _enqueue(
        self,
        requester: Requester,
        spec: GenerationSpec,
        parent: int | None,
        settings: ServerSettings | None = None,
        details_hidden: bool = False,
    ) -> Ticket:
        user, server = requester.user_key, requester.server_key
        limits = community.server_limits(self._limits, settings)
        bucket = await self._bucket(user)
        # From here to the reservation nothing awaits, so concurrent submits see each other.
        self._check_open()
        pending = Pending(
            user=self._held_user[user],
            server=self._held_server[server] if server else 0,
            total=len(self._held),
        )
        check_caps(pending, limits, self.eta_for_position(len(self._queue) + 1))
        now = self._clock.now()
        spent = take_token(bucket, now, limits)
        job = Job(
            id=self._store.next_job_id(),
            requester=requester,
            spec=spec,
            state=JobState.QUEUED,
            created_at=now,
            parent_job_id=parent,
            details_hidden=details_hidden,
        )
        self._buckets[user] = spent
        self._hold(job)
        try:
            await self._store.add_job(job, user, spent)
        except Exception:
            self._unhold(job.id)
            # Give the token back: the user got nothing for it.
            current = self._buckets[user]
            self._buckets[user] = Bucket(
                min(self._limits.burst, current.tokens + 1), current.updated_at
            )
            raise
        self._active[job.id] = job
        self._queue.push(job)
        self._queue_changed()
        self._wake.set()
        position = self._queue.position(job.id)
        log.info("job #%d queued for %s at position %d", job.id, user, position)
        return Ticket(
            job=access.outward(job), position=position, eta_s=self.eta_for_position(position)
        )

    async def _bucket(self, user_key: str) -> Bucket:
        if user_key not in self._buckets:
            await self._load_user(user_key)
        return self._buckets[user_key]

    async def _load_user(self, user_key: str) -> None:
        """Cache a user's stored bucket and default style: one read, shared by concurrent calls."""
        loading = self._loading.get(user_key)
        if loading is None:
            loading = asyncio.get_running_loop().create_task(self._store.user_state(user_key))
            self._loading[user_key] = loading
            loading.add_done_callback(lambda _: self._loading.pop(user_key, None))
        bucket, style = await asyncio.shield(loading)
        # Another submit may have loaded (and spent from) the bucket while this one waited.
        if user_key not in self._buckets:
            self._buckets[user_key] = bucket or full_bucket(self._clock.now(), self._limits)
        self._default_styles.setdefault(user_key, style)

    def _hold(self, job: Job) -> None:
        self._held[job.id] = job
        self._held_user[job.requester.user_key] += 1
        if job.requester.server_key:
            self._held_server[job.requester.server_key] += 1

    def _unhold(self, job_id: int) -> None:
        job = self._held.pop(job_id, None)
        if job is None:
            return
        _decrement(self._held_user, job.requester.user_key)
        if job.requester.server_key:
            _decrement(self._held_server, job.requester.server_key)

    async def _visible_job(self, job_id: int) -> Job:
        job = await self._store.get_job(check_job_id(job_id))
        if job is None or await self._store.is_deleted(job_id):
            raise NotFound(texts.no_such_job(job_id))
        return job

    # --- dispatching -----------------------------------------------------------------------

    async def _dispatch_loop(self) -> None:
        while True:
            while (
                self._dispatching
                and not self._paused
                and len(self._running) < max(1, self._executor.capacity)
            ):
                job = self._queue.pop()
                if job is None:
                    break
                self._start_job(job)
            self._queue_changed()
            self._wake.clear()
            await self._wake.wait()

    def _start_job(self, job: Job) -> None:
        running = replace(
            job, state=JobState.RUNNING, attempts=job.attempts + 1, started_at=self._clock.now()
        )
        self._running[job.id] = running
        self._active[job.id] = running
        if self._busy_since is None:
            self._busy_since = time.monotonic()
        task = asyncio.get_running_loop().create_task(self._run_job(running))
        self._job_tasks.add(task)
        task.add_done_callback(self._job_tasks.discard)

    async def _run_job(self, job: Job) -> None:
        started = self._clock.monotonic()
        loop = asyncio.get_running_loop()
        # Record "running" while the executor already works, so the fsync costs the GPU nothing.
        # A crash before this commit lands leaves the row "queued": the job simply runs again.
        marked = loop.create_task(
            self._store.update_job(
                job.id, state=JobState.RUNNING, attempts=job.attempts, started_at=job.started_at
            )
        )
        # Likewise the image's file is created now, so that after generation only the write
        # and the fsyncs remain between the GPU and the send. A task, so that it starts once the
        # executor has the job.
        prepared = loop.create_task(self._prepare_image(job))
        try:
            result = await self._executor.generate(job.id, job.spec, self._on_progress(job))
        except asyncio.CancelledError:
            prepared.cancel()
            await self._abandon(marked)
            raise
        except GenerationFailed as err:
            await self._no_result(job, marked, prepared)
            await self._fail(job, str(err), kind="generation")
            return
        except Exception as err:
            await self._no_result(job, marked, prepared)
            log.exception("job #%d: executor error (attempt %d)", job.id, job.attempts)
            await self._retry_or_fail(job, err)
            return
        elapsed = self._clock.monotonic() - started
        await self._settle(marked)
        self._leave_executor(job)
        relative = await prepared  # long done; the write must not race the file's creation
        self.metrics.generation_seconds.observe(elapsed)
        await self._store_result(job, relative, result, elapsed)

    async def _prepare_image(self, job: Job) -> str:
        """Create the image's folder and temporary file; its path relative to the data dir."""
        relative = str(image_relative_path(job.id, self._clock.now()))
        await asyncio.to_thread(prepare_image, self._data_dir / relative)
        return relative

    async def _no_result(
        self, job: Job, marked: asyncio.Task[None], prepared: asyncio.Task[str]
    ) -> None:
        """Generation ended without an image: settle its side work and free its slot."""
        await self._settle(marked)
        self._leave_executor(job)
        relative = await prepared
        await asyncio.to_thread(discard_prepared, self._data_dir / relative)

    async def _abandon(self, marked: asyncio.Task[None]) -> None:
        """The job was cancelled (shutdown gave up on it): let its "running" write finish now,
        so it never runs against a closed database; the row is recovered at the next start."""
        try:
            await asyncio.shield(marked)
        except asyncio.CancelledError:
            marked.cancel()
            raise
        except StorageError as err:
            log.warning("could not record a job as running: %s", err)

    async def _settle(self, marked: asyncio.Task[None]) -> None:
        try:
            await marked
        except StorageError as err:
            log.warning("could not record a job as running: %s", err)

    def _leave_executor(self, job: Job) -> None:
        self._running.pop(job.id, None)
        if not self._running and self._busy_since is not None:
            self.metrics.gpu_busy.inc(time.monotonic() - self._busy_since)
            self._busy_since = None
        self._wake.set()

    async def _store_result(
        self, job: Job, relative: str, result: Generated, elapsed: float
    ) -> None:
        """Write the JPEG and record it, both at once; then post it from this same task.

        When the platform's adapter is registered the row goes straight to ``posting`` (one
        commit, not two), and the send starts only after the file and the row are durable.
        A crash in between leaves a row that says "posting": reported, never sent twice.
        Posting here rather than in a task of its own saves a turn of the loop; the dispatcher
        has already handed the next job to the executor, so it overlaps generation all the same.
        """
        now = self._clock.now()
        notifier = self._notifiers.get(job.requester.platform)
        state = JobState.GENERATED if notifier is None else JobState.POSTING
        problem = await self._save_result(job.id, relative, state, result, now)
        if problem is not None:
            await self._requeue_after_storage_error(job, problem)
            return
        done = replace(
            job, state=state, image_path=relative, timings=result.timings, finished_at=now
        )
        self._durations.append(elapsed)
        self._unhold(job.id)
        self._active[job.id] = done
        if notifier is None:
            self._parked[job.requester.platform].append(_Parked(done, None))
        else:
            await self._post(done, notifier)

    async def _save_result(
        self, job_id: int, relative: str, state: JobState, result: Generated, now: float
    ) -> StorageError | None:
        """Make the image file and the row durable, concurrently; the storage error, if any.

        The file write goes to its thread and the commit to the database's thread in one step
        (no task per branch, so neither waits a turn of the loop for the other to start).
        """
        # One turn of the loop first: the next job, released by this one, is handed to the
        # executor before two I/O threads wake up and compete with it for the 2 cores.
        await asyncio.sleep(0)
        path = self._data_dir / relative
        written = asyncio.get_running_loop().run_in_executor(
            None, self._write_image, path, result.jpeg
        )
        problem: StorageError | None = None
        try:
            await self._store.update_job(
                job_id, state=state, image_path=relative, timings=result.timings, finished_at=now
            )
        except StorageError as err:
            problem = err
        except BaseException:
            written.cancel()  # cancelled (shutdown): the row stays "running", recovered later
            raise
        try:
            await written
        except OSError as err:
            return problem or storage_error(err, "save the image")
        return problem

    async def _requeue_after_storage_error(self, job: Job, err: StorageError) -> None:
        """Keep the job (it does not count as an attempt) and pause until storage recovers."""
        log.error("job #%d: %s Pausing the queue for %.0f s.", job.id, err, self._storage_retry_s)
        self.metrics.failures.labels(kind="storage").inc()
        queued = replace(job, state=JobState.QUEUED, attempts=job.attempts - 1, started_at=None)
        with contextlib.suppress(StorageError):
            await self._store.update_job(
                job.id,
                state=JobState.QUEUED,
                attempts=queued.attempts,
                image_path=None,
                timings=None,
                finished_at=None,
            )
        self._active[job.id] = queued
        self._queue.push_front(queued)
        self._pause()

    def _pause(self) -> None:
        self._paused = True
        asyncio.get_running_loop().call_later(self._storage_retry_s, self.resume)

    async def _retry_or_fail(self, job: Job, err: Exception) -> None:
        if job.attempts >= self._settings.max_attempts:
            await self._fail(
                job,
                str(texts.crashed_too_often(job.attempts, type(err).__name__)),
                kind="crash",
            )
            return
        queued = replace(job, state=JobState.QUEUED, started_at=None)
        try:
            await self._store.update_job(job.id, state=JobState.QUEUED)
        except StorageError:
            log.warning("job #%d: could not record the retry; the row says running", job.id)
        self._active[job.id] = queued
        self._queue.push_front(queued)
        self._wake.set()

    def _on_progress(self, job: Job) -> ProgressCallback:
        loop = asyncio.get_running_loop()

        async def send(step: int, total: int) -> None:
            notifier = self._notifiers.get(job.requester.platform)
            if notifier is not None:
                await notifier.progress(access.outward(self._active.get(job.id, job)), step, total)

        pump = _ProgressPump(send)
        self._pumps[job.id] = pump

        def on_progress(step: int, total: int) -> None:
            # May run on the executor's thread: hop onto the loop before touching anything.
            loop.call_soon_threadsafe(pump.push, step, total)

        return on_progress

    async def _drain_progress(self, job_id: int) -> None:
        pump = self._pumps.pop(job_id, None)
        if pump is not None:
            await pump.drain()

    # --- delivery --------------------------------------------------------------------------

    def _schedule_delivery(self, job: Job) -> None:
        notifier = self._notifiers.get(job.requester.platform)
        if notifier is None:
            self._parked[job.requester.platform].append(_Parked(job, None))
            return
        self._spawn(self._deliver(job, notifier))

    async def _deliver(self, job: Job, notifier: Notifier) -> None:
        """A ``generated`` job (recovered, or made while its adapter was away): post it."""
        if self.image_file(job) is None:
            await self._fail(job, str(texts.IMAGE_MISSING), "storage")
            return
        try:
            await self._store.update_job(job.id, state=JobState.POSTING)
        except StorageError as err:
            log.error("job #%d: %s Will retry delivery.", job.id, err)  # noqa: TRY400
            asyncio.get_running_loop().call_later(
                self._storage_retry_s, self._schedule_delivery, job
            )
            return
        await self._post(replace(job, state=JobState.POSTING), notifier)

    async def _post(self, posting: Job, notifier: Notifier) -> None:
        """Send a job whose ``posting`` state is committed; record ``posted`` after."""
        job = posting
        self._active[job.id] = posting
        await self._drain_progress(job.id)
        path = self.image_file(job)
        if path is None:
            await self._fail(job, str(texts.IMAGE_MISSING), "storage")
            return
        try:
            delivered = await notifier.deliver(access.outward(posting), str(path))
        except Exception as err:
            log.exception("job #%d: delivery failed", job.id)
            why = str(err) if isinstance(err, TurbobotError) else "the chat platform refused it"
            await self._fail(posting, str(texts.not_posted(why)), kind="delivery")
            return
        posted = replace(
            posting,
            state=JobState.POSTED,
            posted_message_id=delivered.message_id,
            posted_file_ref=delivered.file_ref,
        )
        try:
            await self._store.update_job(
                job.id,
                state=JobState.POSTED,
                posted_message_id=delivered.message_id,
                posted_channel_id=delivered.channel_id,
                file_ref=delivered.file_ref,
            )
        except StorageError as err:
            # The row stays "posting": after a restart it is reported, never posted again.
            log.error("job #%d was posted but not recorded: %s", job.id, err)  # noqa: TRY400
        self.metrics.job_latency.observe(max(0.0, self._clock.now() - job.created_at))
        self.metrics.jobs.labels(state="posted").inc()
        self._finish(posted)

    async def _fail(self, job: Job, reason: str, kind: str) -> None:
        failed = replace(job, state=JobState.FAILED, error=reason, finished_at=self._clock.now())
        try:
            await self._store.update_job(
                job.id, state=JobState.FAILED, error=reason, finished_at=failed.finished_at
            )
        except StorageError as err:
            log.error("job #%d failed, unrecorded: %s (%s)", job.id, err, reason)  # noqa: TRY400
        log.info("job #%d failed: %s", job.id, reason)
        self.metrics.failures.labels(kind=kind).inc()
        self.metrics.jobs.labels(state="failed").inc()
        self._unhold(job.id)
        self._finish(failed)
        await self._tell_failed(failed, reason)

    async def _tell_failed(self, job: Job, reason: str) -> None:
        await self._drain_progress(job.id)
        notifier = self._notifiers.get(job.requester.platform)
        if notifier is None:
            self._parked[job.requester.platform].append(_Parked(job, reason))
            return
        try:
            await notifier.failed(access.outward(job), reason)
        except Exception:
            log.exception("job #%d: could not tell the user about a failure", job.id)

    def _finish(self, job: Job) -> None:
        self._active.pop(job.id, None)
        key = job.requester.user_key
        if self._has_active(key):
            return
        still_waiting = []
        for user_key, future in self._idle_waiters:
            if user_key == key and not future.done():
                future.set_result(None)
            elif not future.done():
                still_waiting.append((user_key, future))
        self._idle_waiters = still_waiting

    def _has_active(self, user_key: str) -> bool:
        return any(j.requester.user_key == user_key for j in self._active.values())

    def _queue_changed(self) -> None:
        self.metrics.queue_depth.set(len(self._queue))
        self.metrics.in_flight.set(len(self._running))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    # --- recovery --------------------------------------------------------------------------

    async def recover(self) -> None:
        """Put every unfinished job back on its path after a restart or a crash.

        queued → queued again; running → queued again while attempts remain, else failed and
        the user told; generated → delivered; posting → never re-sent (the send may or may not
        have reached the platform): failed, and the user pointed to /history.
        """
        unfinished = await self._store.jobs_in_states(
            (JobState.QUEUED, JobState.RUNNING, JobState.GENERATED, JobState.POSTING)
        )
        for job in unfinished:
            await self._recover_one(job)
        if unfinished:
            log.info("recovered %d unfinished job(s)", len(unfinished))
        self._queue_changed()

    async def _recover_one(self, job: Job) -> None:
        if job.state is JobState.QUEUED:
            self._requeue_recovered(job)
        elif job.state is JobState.RUNNING and job.attempts < self._settings.max_attempts:
            await self._store.update_job(job.id, state=JobState.QUEUED)
            self._requeue_recovered(replace(job, state=JobState.QUEUED))
        elif job.state is JobState.RUNNING:
            self._active[job.id] = job
            await self._fail(
                job,
                str(texts.stopped_too_often(job.attempts)),
                kind="crash",
            )
        elif job.state is JobState.GENERATED and self.image_file(job) is None:
            # Recorded while its file was being written, and the file did not survive: make it
            # again (nothing was posted, so this cannot post twice).
            await self._store.update_job(job.id, state=JobState.QUEUED, image_path=None)
            self._requeue_recovered(replace(job, state=JobState.QUEUED, image_path=None))
        elif job.state is JobState.GENERATED:
            self._active[job.id] = job
            self._schedule_delivery(job)
        else:  # POSTING: at-most-once wins over delivery
            self._active[job.id] = job
            await self._fail(
                job,
                str(texts.maybe_posted(job.id)),
                kind="delivery",
            )

    def _requeue_recovered(self, job: Job) -> None:
        self._active[job.id] = job
        self._hold(job)
        self._queue.push(job)


def _decrement(counter: Counter[str], key: str) -> None:
    """One less for ``key``; a key at zero goes, so the counter holds only users with jobs."""
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


MAX_PAGE_ROWS = 100
MAX_OFFSET = 1_000_000  # far beyond any history; keeps a forged page number inside SQLite's ints


def page_window(limit: int, offset: int) -> tuple[int, int]:
    """``limit`` and ``offset`` from a user's page, clamped to what a page can be."""
    return max(0, min(limit, MAX_PAGE_ROWS)), max(0, min(offset, MAX_OFFSET))


async def _delete_messages(notifier: Notifier, posts: list[tuple[str, str]]) -> None:
    for channel_id, message_id in posts:
        try:
            await notifier.delete_message(channel_id, message_id)
        except Exception as err:
            log.warning("could not delete a post of a forgotten user: %s", type(err).__name__)


def image_relative_path(job_id: int, now: float) -> Path:
    """``images/YYYY/MM/<id>.jpg`` (UTC), relative to the data dir."""
    stamp = time.gmtime(now)
    return Path("images") / f"{stamp.tm_year:04d}" / f"{stamp.tm_mon:02d}" / f"{job_id}.jpg"


@contextlib.asynccontextmanager
async def open_core(
    settings: Settings,
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
