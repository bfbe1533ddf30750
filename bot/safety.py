"""The optional image safety check (issue 14): after generation, before delivery.

The VLM the engine already holds classifies each generated image (each image of a grid; the
job is flagged if any is) against a short policy. A server's admins choose what a flag does
(:class:`~bot.domain.SafetyMode`: off, spoiler, withhold); the operator sets the default.

It **fails open**: a check that is unavailable, fails or runs past its time limit leaves the
image unchecked and it is posted normally, with the reason logged. The check is a best-effort
courtesy layer on top of the word filter and the platforms' own rules, not a guarantee; holding
every image of every server hostage to one model's availability would take the bot down with
it (an operator who needs a hard guarantee sets ``withhold`` and keeps the VLM loaded).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from bot.community import Community
from bot.domain import Generated, ImageVerdict, Job, SafetyMode
from bot.errors import TurbobotError
from bot.ports import Clock, Executor
from bot.slices import CoreSettings
from bot.store import AuditNote, Store

log = logging.getLogger(__name__)

DEFAULT_POLICY = (
    "No sexual content or nudity, no graphic violence or gore, no hateful symbols, "
    "no self-harm, no real people depicted in a demeaning way."
)
DEFAULT_TIME_LIMIT_S = 30.0  # one prefill per image: ~0.1 s each on a GPU (see README)
AUDIT_ACTION = "safety_flag"


@dataclass(frozen=True, slots=True)
class SafetyConfig:
    """The operator's side: the default mode, the policy and the time limit per job."""

    default_mode: SafetyMode = SafetyMode.OFF
    policy: str = DEFAULT_POLICY
    time_limit_s: float = DEFAULT_TIME_LIMIT_S


def safety_config(settings: CoreSettings) -> SafetyConfig:
    return SafetyConfig(
        default_mode=settings.safety_check,
        policy=settings.safety_policy.strip() or DEFAULT_POLICY,
        time_limit_s=settings.safety_time_limit_s,
    )


@dataclass(frozen=True, slots=True)
class Checked:
    """A job's verdict (None: not checked) and the mode that decides what a flag does."""

    verdict: ImageVerdict | None
    mode: SafetyMode

    @property
    def withhold(self) -> bool:
        return (
            self.verdict is not None and self.verdict.flagged and self.mode is SafetyMode.WITHHOLD
        )


class SafetyCheck:
    """Runs the check for one finished job and writes each flag to its server's audit log."""

    def __init__(
        self,
        executor: Executor,
        community: Community,
        store: Store,
        clock: Clock,
        config: SafetyConfig,
    ) -> None:
        self._executor = executor
        self._community = community
        self._store = store
        self._clock = clock
        self._config = config

    async def mode_for(self, job: Job) -> SafetyMode:
        """The server's choice, else the operator's default (also in DMs)."""
        settings = await self._community.settings_for(job.requester)
        chosen = settings.safety_check if settings is not None else None
        return chosen or self._config.default_mode

    async def check(self, job: Job, result: Generated) -> Checked:
        """The verdict for ``result`` under the job's mode; never raises (fail-open)."""
        mode = await self.mode_for(job)
        if mode is SafetyMode.OFF:
            return Checked(None, mode)
        try:
            async with asyncio.timeout(self._config.time_limit_s):
                verdict = await self._classify(job.id, result)
        except TimeoutError:
            log.warning(
                "job #%d: safety check ran past %.0f s; posted unchecked (fail-open)",
                job.id,
                self._config.time_limit_s,
            )
            return Checked(None, mode)
        except Exception as err:
            why = str(err.message) if isinstance(err, TurbobotError) else type(err).__name__
            log.warning(
                "job #%d: safety check failed (%s); posted unchecked (fail-open)", job.id, why
            )
            return Checked(None, mode)
        if verdict is None:
            log.warning(
                "job #%d: safety check unavailable on this executor; posted unchecked", job.id
            )
        elif verdict.flagged:
            await self._audit(job, verdict, mode)
        return Checked(verdict, mode)

    async def _classify(self, job_id: int, result: Generated) -> ImageVerdict | None:
        """Each image of a grid (not the grid: each is posted and picked alone); the job's
        verdict is flagged when any is, with the highest score."""
        verdicts = []
        for jpeg in result.images or (result.jpeg,):
            verdict = await self._executor.check_image(job_id, jpeg, self._config.policy)
            if verdict is None:
                return None
            verdicts.append(verdict)
        return max(verdicts, key=lambda v: (v.flagged, v.score))

    async def _audit(self, job: Job, verdict: ImageVerdict, mode: SafetyMode) -> None:
        requester = job.requester
        # A DM has no server: its flags go under the platform's "dm" key, for the operator.
        server_key = requester.server_key or f"{requester.platform}:dm"
        note = AuditNote(
            self._clock.now(),
            server_key,
            requester.user_id,
            AUDIT_ACTION,
            f"job #{job.id}",
            f"{mode}; score {verdict.score:.2f}",
        )
        try:
            await self._store.servers.audit(note)
        except TurbobotError as err:
            log.error("job #%d: flagged but the audit entry was not written: %s", job.id, err)  # noqa: TRY400
