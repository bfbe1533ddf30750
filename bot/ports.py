"""Ports: the small interfaces at the edges of the core.

The core depends only on these. Implementations live elsewhere (``engine/`` for executors,
``adapters/`` for notifiers); fakes in tests satisfy them without inheritance.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal, Protocol

from bot.domain import (
    AuditEntry,
    Credit,
    Delivered,
    DeriveKind,
    GalleryItem,
    Generated,
    GenerateRequest,
    GenerationSpec,
    ImageVerdict,
    Job,
    JobAction,
    Language,
    Platform,
    Requester,
    ServerSettings,
    SettingsChange,
    ShareTicket,
    StepRange,
    StyleChanges,
    StyleInfo,
    StyleScan,
    Ticket,
    UserPrivacy,
    VlmAvailability,
    VoteResult,
)
from bot.i18n import Message

ProgressCallback = Callable[[int, int], None]
"""Called as ``(step, total)`` after each denoising step, from whatever thread runs the work."""


class Clock(Protocol):
    """Injected time, so tests never sleep."""

    def now(self) -> float:
        """Wall-clock seconds since the epoch (persisted: rate limits survive restarts)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, for durations."""
        ...


class Executor(Protocol):
    """Runs generations on the GPU(s).

    ``capacity`` is how many jobs the core may have in flight at once: a local GPU executor
    takes two, so the next job is staged while the last one's JPEG is encoded; a pool of
    workers takes one per idle worker. The core keeps fairness, so an executor never queues.
    """

    @property
    def capacity(self) -> int: ...

    async def generate(
        self, job_id: int, spec: GenerationSpec, on_progress: ProgressCallback
    ) -> Generated:
        """Make one image. Raises :class:`bot.errors.GenerationFailed` with a user message."""
        ...

    def styles(self) -> list[StyleInfo]:
        """Styles this executor can apply right now."""
        ...

    def vlm_availability(self) -> VlmAvailability:
        """Which vision-language features (describe, enhance, safety) the loaded text encoder
        can serve, each with why (not): checked from the checkpoint's files at load."""
        ...

    async def describe(
        self,
        job_id: int,
        image: bytes,
        language: Language,
        *,
        max_new_tokens: int,
        time_limit_s: float,
    ) -> str:
        """A prompt that would recreate ``image`` (a JPEG/PNG/WebP file), in ``language``, on
        the same GPU as the images. Raw model text: the core sanitises it. Bounded by
        ``max_new_tokens`` and ``time_limit_s``; raises like :meth:`generate`."""
        ...

    async def enhance(
        self, job_id: int, prompt: str, *, max_new_tokens: int, time_limit_s: float
    ) -> str:
        """``prompt`` rewritten in detail for Qwen-Image, quoted text kept verbatim. Raw model
        text (the core sanitises it); bounded like :meth:`describe`."""
        ...

    async def rescan_styles(self) -> StyleScan:
        """Pick up added or removed style folders without a restart; say which were refused."""
        ...

    async def check_image(self, job_id: int, jpeg: bytes, policy: str) -> ImageVerdict | None:
        """Classify one generated image against ``policy`` (the optional safety check), on the
        same GPU in its turn. None when this executor has no check (the VLM is off or the
        checkpoint lacks it); raises :class:`bot.errors.GenerationFailed` when it fails."""
        ...

    async def aclose(self) -> None: ...


class Notifier(Protocol):
    """How the core talks back to one chat platform. Implemented by each adapter.

    Calls for a job arrive in order: ``progress`` while it runs, then exactly one of
    ``deliver`` or ``failed``. ``deliver`` is called at most once per job, ever.
    """

    @property
    def platform(self) -> Platform: ...

    async def progress(self, job: Job, step: int, total: int) -> None:
        """A denoising step finished. Adapters throttle edits themselves."""
        ...

    async def deliver(self, job: Job, jpeg_path: str) -> Delivered:
        """Post the finished image (absolute path) to ``job.requester.channel_id``."""
        ...

    async def deliver_text(self, job: Job) -> Delivered:
        """Post a describe job's result, ``job.text`` (sanitised), with its follow-ups
        (imagine it, edit it first). Called instead of ``deliver``, at most once per job."""
        ...

    async def failed(self, job: Job, reason: Message | str) -> None:
        """Tell the requester, in plain words, that the job failed or could not be delivered.

        ``reason`` is a catalogue message to show in the chat's language (a plain ``str`` is
        shown as it is)."""
        ...

    async def delete_message(self, channel_id: str, message_id: str) -> None:
        """Delete one of the bot's own posts (a showcase post of a user who used /forget or
        opted out). Raises when the platform refuses (too old, no rights); the core logs it."""
        ...


class CoreApi(Protocol):
    """What adapters may ask of the core (implemented by :class:`bot.service.Core`).

    Adapters translate a platform event into one of these calls and the result (or a
    :class:`bot.errors.TurbobotError`) back into a platform message. Validation, rate limits,
    fairness, defaults and history all live behind this interface, once for every platform.
    """

    async def submit(self, request: GenerateRequest, *, image: bytes | None = None) -> Ticket:
        """Validate, admit and durably queue a request; the row is committed before returning.

        ``image``: a user's own picture (JPEG, PNG or WebP) to start from (``JobKind.IMG2IMG``,
        at ``request.strength``); a bad file is a BadRequest saying what to send instead.
        ``request.n`` asks for several images (posted as one grid).
        """
        ...

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
        """A new image from an earlier job: the one path, with one permission check
        (``kind.action``, see :mod:`bot.access`) and one rule per kind (:mod:`bot.derive`).
        The new job copies the parent's prompt and settings; ``style`` (restyle only)
        overrides the style. ``image`` (1-based, U1..U4) picks one of the parent's images for
        pick, vary subtle/strong, upscale and remix; ``prompt`` and ``strength`` edit a remix.
        A pick needs no GPU work: its ticket has position 0. It records ``parent_job_id``.
        """
        ...

    async def describe(self, requester: Requester, image: bytes, language: Language) -> Ticket:
        """Queue a describe of the user's picture (JPEG, PNG or WebP): the VLM writes, in
        ``language``, a prompt that would recreate it; posted through ``deliver_text``. A
        durable job in the same fair queue as images. BadRequest when the loaded model cannot
        describe (see :meth:`vlm_availability`) or the file is no image."""
        ...

    def vlm_availability(self) -> VlmAvailability:
        """Which VLM features this bot can serve now and why (not), for ``/help``."""
        ...

    async def lineage(self, requester: Requester, job_id: int) -> list[Job]:
        """The jobs ``job_id`` was made from, nearest first (for /show), as ``requester`` may
        see each (:mod:`bot.access`); the chain ends at the first one they may not see."""
        ...

    async def cancel(self, requester: Requester, job_id: int | None) -> Job:
        """Cancel one of the requester's queued jobs (NotFound / NotAllowed otherwise);
        ``None``: their newest waiting job (``/cancel`` alone, the same on every platform)."""
        ...

    async def queue_of(self, requester: Requester) -> list[tuple[Job, int]]:
        """The requester's unfinished jobs with their queue positions (0 = running now)."""
        ...

    async def history(self, requester: Requester, *, limit: int = 10, offset: int = 0) -> list[Job]:
        """The requester's jobs, newest first."""
        ...

    async def job(self, job_id: int) -> Job:
        """One job by id (NotFound if there is none), with no permission check: for tools
        that act for the operator. Whatever a user asks for goes through :meth:`job_for`."""
        ...

    async def job_for(self, requester: Requester, job_id: int, action: JobAction) -> Job:
        """One job as ``requester`` may see it for ``action``: the one permission rule
        (:mod:`bot.access`). NotFound when it is not theirs to see, NotAllowed when its author
        does not allow ``action``; a hidden prompt comes back hidden. ``SHOW`` is rate-limited.
        """
        ...

    async def delete(self, requester: Requester, job_id: int, *, is_admin: bool = False) -> Job:
        """Delete a result: image file removed, row kept as history-less tombstone."""
        ...

    def image_file(self, job: Job) -> Path | None:
        """Absolute path of a job's JPEG, or None when there is none (yet, or deleted)."""
        ...

    def styles(self) -> list[StyleInfo]: ...

    @property
    def step_range(self) -> StepRange:
        """The steps a request may ask for: Turbo's, or the base model's (base mode)."""
        ...

    async def rescan_styles(self, requester: Requester) -> StyleChanges:
        """Re-read the style folders (operators only, else NotAllowed); the model stays loaded."""
        ...

    async def set_default_style(self, requester: Requester, style: str | None) -> None:
        """The requester's own default style (None clears it); UnknownStyle if not installed."""
        ...

    async def default_style(self, requester: Requester) -> str | None: ...

    def eta_for_position(self, position: int) -> float:
        """Seconds until a job at ``position`` starts, from recent job times."""
        ...


class ChatAdapter(Notifier, Protocol):
    """A chat platform adapter: takes commands in, and is the core's notifier for its platform.

    Lifecycle, driven by the composition root: ``start`` (connect, begin taking commands),
    ``stop_intake`` (refuse new commands politely; deliveries still work so the job in flight
    can be posted), ``aclose`` (disconnect).
    """

    async def start(self) -> None: ...

    async def stop_intake(self) -> None: ...

    async def aclose(self) -> None: ...

    @property
    def connected(self) -> bool:
        """True while the platform connection is up; ``/healthz`` reports it. The platform
        libraries reconnect by themselves (discord.py's gateway loop, PTB's polling retries)."""
        ...


GallerySort = Literal["recent", "top"]
GalleryPeriod = Literal["week", "month", "all"]


class CommunityApi(Protocol):
    """Server settings, sharing, galleries, remix, privacy and moderation (issue 6).

    Implemented by :class:`bot.service.Core`. Admin rights are the platform's business: the
    adapter passes ``is_admin`` (Discord "Manage Server" for every admin action, Telegram group
    administrator) and the
    core refuses admin actions without it (:class:`bot.errors.NotAllowed`).
    """

    async def server_settings(self, platform: Platform, server_id: str) -> ServerSettings:
        """A server's settings (defaults when an admin never changed any)."""
        ...

    async def update_server_settings(
        self, actor: Requester, change: SettingsChange, *, is_admin: bool
    ) -> ServerSettings:
        """Apply ``change`` to ``actor``'s server; BadRequest for bad values; audit-logged."""
        ...

    async def share(self, requester: Requester, job_id: int) -> ShareTicket:
        """Share one of your posted images to the server's showcase channel."""
        ...

    async def record_share(self, share_id: int, message_id: str) -> None:
        """The adapter posted the share as ``message_id`` (so reactions map back to it)."""
        ...

    async def share_by_message(self, platform: Platform, message_id: str) -> int | None:
        """The share posted as ``message_id``, if any (Discord reactions on showcase posts)."""
        ...

    async def vote(self, voter: Requester, share_id: int, value: int) -> int:
        """Vote 1 / -1 on a share (0 removes the vote); one per user; returns the new score."""
        ...

    async def toggle_vote(self, voter: Requester, share_id: int) -> VoteResult:
        """Like a share, or take back the voter's like; the new score and their vote now."""
        ...

    async def credit_for(self, job: Job) -> Credit | None:
        """Whom a result credits: the author of the image it was made from, when that is
        somebody else and still visible to the job's owner (None otherwise)."""
        ...

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
        """A server's shared images, newest or best first; never opted-out or deleted ones."""
        ...

    async def privacy(self, requester: Requester) -> UserPrivacy: ...

    async def set_privacy(
        self,
        requester: Requester,
        *,
        share_opt_out: bool | None = None,
        hide_details: bool | None = None,
    ) -> UserPrivacy:
        """Change the requester's sharing choices (None = unchanged)."""
        ...

    async def forget(self, requester: Requester) -> int:
        """Delete everything of this platform user (jobs, images, shares, votes, prefs).

        Returns the number of jobs deleted.
        """
        ...

    async def set_blocked(
        self, actor: Requester, user_id: str, blocked: bool, *, is_admin: bool
    ) -> None:
        """Block or unblock ``user_id`` from the bot in ``actor``'s server; audit-logged."""
        ...

    async def audit_log(
        self, actor: Requester, *, is_admin: bool, limit: int = 20
    ) -> list[AuditEntry]:
        """The newest admin actions in ``actor``'s server (admins only)."""
        ...


class BotApi(CoreApi, CommunityApi, Protocol):
    """Everything an adapter may ask of the core."""
