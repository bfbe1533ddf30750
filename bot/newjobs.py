"""New jobs: a request, a derived image or a pick, checked, admitted and durably queued.

:class:`NewJobs` is the intake half of :class:`bot.service.Core`: it validates (``bot.validation``
and the kind's rule in ``bot.derive``), applies the server's rules (``bot.community``), reserves
the job with admission (caps, rate limit, the committed row) and hands it to dispatch, or, for a
pick, straight to delivery.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import replace

from bot import access, community
from bot.board import Board
from bot.community import Community
from bot.delivery import Delivery
from bot.derive import Iteration, derive_spec, iteration_fields, with_upload
from bot.dispatch import Dispatcher
from bot.domain import (
    DeriveKind,
    GenerateRequest,
    GenerationSpec,
    Job,
    JobAction,
    JobKind,
    JobState,
    Language,
    Requester,
    ServerSettings,
    StepRange,
    StyleInfo,
    Ticket,
)
from bot.errors import StorageError
from bot.i18n import msg
from bot.image_files import ImageFiles
from bot.images import InputImage, read_image
from bot.intake import Admission
from bot.ports import Clock, Executor
from bot.store import Store, storage_error
from bot.validation import (
    check_strength,
    clean_request,
    clean_requester,
    resolve_style,
    sanitise_optional,
    validate,
)
from bot.vlm_jobs import require

log = logging.getLogger(__name__)

AccessFn = Callable[[Requester, int, JobAction], Awaitable[tuple[Job, Job]]]
"""(the job as stored, as the requester may see it) for an action: ``Core``'s access check."""


class NewJobs:
    def __init__(
        self,
        *,
        store: Store,
        files: ImageFiles,
        admission: Admission,
        dispatcher: Dispatcher,
        delivery: Delivery,
        board: Board,
        executor: Executor,
        community: Community,
        clock: Clock,
        rng: random.Random,
        steps: StepRange,
        max_images: int,
        banned_words: tuple[str, ...],
        access_check: AccessFn,
    ) -> None:
        self._store = store
        self._files = files
        self._admission = admission
        self._dispatcher = dispatcher
        self._delivery = delivery
        self._board = board
        self._executor = executor
        self._community = community
        self._clock = clock
        self._rng = rng
        self._steps = steps
        self._max_images = max_images
        self._banned_words = banned_words
        self._access = access_check

    def eta_for_position(self, position: int) -> float:
        return self._dispatcher.eta_for_position(position)

    async def submit(self, request: GenerateRequest, *, image: bytes | None = None) -> Ticket:
        """A new job: text-to-image, or (``image``: a user's file) image-to-image."""
        self._admission.check_open()
        request = clean_request(request)
        upload = None if image is None else await asyncio.to_thread(read_image, image)
        who = request.requester
        server = await self._admission.admit(who)
        styles = self._executor.styles()
        usable = community.usable_styles(styles, server, who.channel_nsfw)
        mine = await self._admission.default_style(who.user_key)
        default = community.pick_default(mine, server, usable)
        known = [s.name for s in styles]
        spec = validate(
            request,
            known_styles=known,
            default_style=default,
            rng=self._rng,
            steps=self._steps,
            max_images=self._max_images,
            has_image=upload is not None,
        )
        if spec.enhance:
            require(self._executor, "enhance")
        # A strength (typed or given) belongs to the input image, set with it below.
        strength, spec = spec.strength, replace(spec, strength=None)
        self._check_rules(who, spec, server, styles)
        if upload is not None:  # stored only once the request passed every rule
            stored = await self._save_input(upload)
            spec = with_upload(spec, upload, stored, strength)
        return await self._enqueue(who, spec, request.parent_job_id, server)

    async def describe(self, requester: Requester, image: bytes, language: Language) -> Ticket:
        """A describe of a user's picture: admitted and queued like an image (one turn)."""
        self._admission.check_open()
        requester = clean_requester(requester)
        require(self._executor, "describe")
        upload = await asyncio.to_thread(read_image, image)
        server = await self._admission.admit(requester)
        stored = await self._save_input(upload)
        spec = GenerationSpec(
            prompt="",  # the model writes it; the job's ``text`` holds the result
            style=None,
            seed=0,
            steps=self._steps.default,
            width=upload.aspect.width,
            height=upload.aspect.height,
            kind=JobKind.DESCRIBE,
            init_image=stored,
            language=language,
        )
        return await self._enqueue(requester, spec, None, server)

    async def derive(
        self,
        requester: Requester,
        job_id: int,
        kind: DeriveKind,
        wanted: Iteration,
        style: str | None,
    ) -> Ticket:
        """The one path for every derived image (the rules: :mod:`bot.derive`); ``wanted``
        as the user gave it (cleaned here), ``style`` for a restyle."""
        self._admission.check_open()
        requester = clean_requester(requester)
        kind = DeriveKind(kind)
        server = await self._admission.admit(requester)
        parent, seen = await self._access(requester, job_id, kind.action)
        styles = self._executor.styles()
        known = [s.name for s in styles]
        style = sanitise_optional(style) if kind is DeriveKind.RESTYLE else None
        new_style = parent.spec.style if style is None else resolve_style(style, None, known)
        choice = Iteration(
            index=wanted.index,
            prompt=sanitise_optional(wanted.prompt),
            strength=None if wanted.strength is None else check_strength(wanted.strength),
        )
        derived = derive_spec(kind, parent, choice, self._rng, new_style)
        spec = derived.spec
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
            enhance=spec.enhance,
        )
        # The parent's settings pass validation again: limits may have changed since.
        checked = validate(
            request,
            known_styles=known,
            default_style=None,
            rng=self._rng,
            steps=self._steps,
            max_images=self._max_images,
            # An edited prompt is parsed like any new one; a stored prompt was parsed already.
            options_in_prompt=choice.prompt is not None,
            has_image=spec.kind.needs_image,
        )
        if checked.strength is not None and choice.strength is None:  # typed in the prompt
            spec = replace(spec, strength=checked.strength)
        checked = iteration_fields(checked, spec)
        if checked.enhance:
            require(self._executor, "enhance")
        self._check_rules(requester, checked, server, styles)
        # An edited prompt is the remixer's own; a copied hidden one stays hidden.
        hidden = seen.details_hidden and choice.prompt is None
        if derived.picked is not None:
            return await self._pick(
                requester,
                checked,
                parent=parent.id,
                picked=derived.picked,
                server=server,
                details_hidden=hidden,
            )
        return await self._enqueue(requester, checked, parent.id, server, hidden)

    # --- admission, shared by submit and derive ---------------------------------------------

    def _check_rules(
        self,
        requester: Requester,
        spec: GenerationSpec,
        server: ServerSettings | None,
        styles: list[StyleInfo],
    ) -> None:
        community.check_spec(requester, spec, server, styles, self._banned_words)

    async def _enqueue(
        self,
        requester: Requester,
        spec: GenerationSpec,
        parent: int | None,
        server: ServerSettings | None = None,
        details_hidden: bool = False,
    ) -> Ticket:
        queue = self._dispatcher.queue
        job = await self._admission.reserve(
            requester,
            spec,
            parent=parent,
            server=server,
            details_hidden=details_hidden,
            eta_of_next=lambda: self.eta_for_position(len(queue) + 1),
        )
        self._dispatcher.push(job)
        position = queue.position(job.id)
        log.info("job #%d queued for %s at position %d", job.id, requester.user_key, position)
        return Ticket(
            job=access.outward(job), position=position, eta_s=self.eta_for_position(position)
        )

    async def _pick(
        self,
        requester: Requester,
        spec: GenerationSpec,
        *,
        parent: int,
        picked: str,
        server: ServerSettings | None,
        details_hidden: bool,
    ) -> Ticket:
        """Image ``picked`` as a job of its own, committed like any job, then its own copy of
        the file and straight to delivery: no GPU work. If the copy fails (the parent's file
        went), the job is queued and made again: its seed gives the same picture."""
        job = await self._admission.reserve(
            requester,
            spec,
            parent=parent,
            server=server,
            details_hidden=details_hidden,
            eta_of_next=lambda: 0.0,
        )
        now = self._clock.now()
        try:
            relative = await self._files.copy(picked, job.id, now)
            await self._store.update_job(
                job.id, state=JobState.GENERATED, image_path=relative, finished_at=now
            )
        except (OSError, StorageError) as err:
            log.warning("job #%d: picked image not copied (%s); making it again", job.id, err)
            self._dispatcher.push(job)
            position = self._dispatcher.queue.position(job.id)
            return Ticket(access.outward(job), position, self.eta_for_position(position))
        self._admission.release(job.id)
        done = replace(job, state=JobState.GENERATED, image_path=relative, finished_at=now)
        self._board.put(done)
        self._delivery.schedule(done)
        return Ticket(job=access.outward(done), position=0, eta_s=0.0)

    async def _save_input(self, upload: InputImage) -> str:
        try:
            return await self._files.save_input(upload.image)
        except OSError as err:
            raise storage_error(err, msg("core.op.save_upload")) from err
