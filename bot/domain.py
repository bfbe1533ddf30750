"""Typed domain objects shared by every layer.

Nothing here knows about torch, Discord or Telegram: adapters translate platform events into
these types, the engine receives a :class:`GenerationSpec`, and results come back as
:class:`Generated`. All objects are frozen so they can cross threads and tasks safely.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

# Re-exported (each module's ``__all__``): ``bot.domain`` stays the one import for the
# core's types and limits.
from bot.limits import *  # noqa: F403
from bot.limits import ASPECTS, image_seed, upscaled_size
from bot.results import *  # noqa: F403
from bot.results import ImageVerdict, Timings


class Platform(StrEnum):
    CONSOLE = "console"
    DISCORD = "discord"
    TELEGRAM = "telegram"


class JobState(StrEnum):
    """Life of a job. Generation is at-least-once; posting is at-most-once."""

    QUEUED = "queued"
    RUNNING = "running"
    GENERATED = "generated"  # image on disk, not yet handed to the platform
    POSTING = "posting"  # a send is (or was, before a crash) in flight: never re-send blindly
    POSTED = "posted"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in _FINAL_STATES


_FINAL_STATES = frozenset({JobState.POSTED, JobState.FAILED, JobState.CANCELLED})


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asked, and where the answer goes. Ids are platform ids as strings.

    ``server_id`` is a Discord guild or a Telegram group (None in a DM or the console);
    ``channel_id`` is where the result is posted; ``reply_to`` an optional message to reply to.
    """

    platform: Platform
    user_id: str
    display_name: str
    channel_id: str
    server_id: str | None = None
    reply_to: str | None = None
    # Discord age-restricted channel: only there may not-safe-for-work styles be used.
    channel_nsfw: bool = False
    # The requester's own client language (Discord locale, Telegram language_code), stored
    # with the job so posts about it after a restart still speak it; None when unknown.
    language: Language | None = None

    @property
    def user_key(self) -> str:
        """Rate limits and fairness are per platform user."""
        return f"{self.platform}:{self.user_id}"

    @property
    def server_key(self) -> str | None:
        return None if self.server_id is None else f"{self.platform}:{self.server_id}"


@dataclass(frozen=True, slots=True)
class GenerateRequest:
    """What a user typed, parsed into types but not yet validated or defaulted.

    ``None`` means "not given": the core fills in the user's default style, a random seed,
    the default steps and aspect.
    """

    requester: Requester
    prompt: str
    style: str | None = None
    seed: int | None = None
    steps: int | None = None
    aspect: str | None = None
    cfg: float | None = None
    negative_prompt: str | None = None
    parent_job_id: int | None = None  # reroll / variation / remix of this job
    n: int | None = None  # images for this prompt (1..the operator's cap); None: one
    strength: float | None = None  # img2img only: how far from the input image
    enhance: bool | None = None  # --enhance: the VLM rewrites the prompt in detail first


class JobKind(StrEnum):
    """What the engine does with a spec: txt2img from noise, the rest img2img from an image."""

    TXT2IMG = "txt2img"
    VARY = "vary"  # the chosen image again, fresh seed, strength VARY_SUBTLE / VARY_STRONG
    REMIX = "remix"  # the chosen image with an edited prompt
    UPSCALE = "upscale"  # resized to UPSCALE_LONG_SIDE, then img2img at a low strength
    IMG2IMG = "img2img"  # a user's own image
    DESCRIBE = "describe"  # no image made: the VLM writes a prompt for the user's image

    @property
    def needs_image(self) -> bool:
        return self is not JobKind.TXT2IMG

    @property
    def makes_image(self) -> bool:
        return self is not JobKind.DESCRIBE


@dataclass(frozen=True, slots=True)
class GenerationSpec:
    """Everything the engine needs for one job (``n`` images); complete and validated.

    Image ``k`` of ``n`` uses seed ``image_seed(seed, k)``: the same picture a one-image job
    with that seed gives. ``init_image`` (img2img kinds only) is a path relative to the data
    dir, like ``Job.image_path``; never absolute, never outside it. ``width``/``height`` are the
    aspect (an upscale renders larger: ``engine.img2img.upscale_size``).
    """

    prompt: str
    style: str | None
    seed: int
    steps: int
    width: int
    height: int
    cfg: float = 1.0
    negative_prompt: str | None = None
    n: int = 1
    kind: JobKind = JobKind.TXT2IMG
    init_image: str | None = None
    strength: float | None = None  # img2img kinds; None: the kind's default
    enhance: bool = False  # the VLM rewrites ``prompt`` before the image is made
    language: Language | None = None  # describe: the language the prompt is written in

    @property
    def aspect(self) -> str:
        for a in ASPECTS.values():
            if (a.width, a.height) == (self.width, self.height):
                return a.name
        return f"{self.width}x{self.height}"

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(image_seed(self.seed, k) for k in range(self.n))

    @property
    def cost(self) -> int:
        """What the job costs in the queue and the rate limits: one per image, an upscale
        its pixels over the aspect's (rounded up): GPU time grows with both."""
        if self.kind is JobKind.DESCRIBE:
            return 1  # the queue's smallest charge: one turn, like one image (a GPU second)
        if self.kind is JobKind.UPSCALE:
            width, height = upscaled_size(self.width, self.height)
            return self.n * math.ceil(width * height / (self.width * self.height))
        return self.n


class SafetyMode(StrEnum):
    """What happens to an image the safety check flags."""

    OFF = "off"  # no check
    SPOILER = "spoiler"  # posted behind a spoiler
    WITHHOLD = "withhold"  # not posted; the requester is told why


@dataclass(frozen=True, slots=True)
class Job:
    """A job as stored. ``image_path`` is relative to the data dir once generated."""

    id: int
    requester: Requester
    spec: GenerationSpec
    state: JobState
    created_at: float
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    image_path: str | None = None
    timings: Timings | None = None
    error: str | None = None
    posted_message_id: str | None = None
    parent_job_id: int | None = None
    # A platform handle to the posted image (a Telegram photo ``file_id``), from ``Delivered``:
    # lets adapters re-share the image without re-uploading it, also after a restart.
    posted_file_ref: str | None = None
    # Made from someone else's image whose author hides the details: the core hands adapters
    # this job with the prompt replaced (see ``bot.access``), the engine gets the real one.
    details_hidden: bool = False
    # The ``spec.n`` images of a job of several, relative to the data dir (image_path is then
    # the grid that was posted); empty for a one-image job, whose image is image_path.
    images: tuple[str, ...] = ()
    # The image safety check's verdict (issue 14), stored before the image is posted; None:
    # not checked (off, unavailable or failed: fail-open).
    verdict: ImageVerdict | None = None

    @property
    def spoiler(self) -> bool:
        """Post this job's image hidden behind a spoiler (the check flagged it)."""
        return self.verdict is not None and self.verdict.flagged

    # The VLM's text (sanitised at the core's edge): a describe's prompt; for ``spec.enhance``
    # the enhanced prompt the image was made from (``spec.prompt`` stays the user's own).
    text: str | None = None

    def image_of(self, k: int) -> str | None:
        """Image ``k`` (1-based, as U1..U4 count) as a path relative to the data dir."""
        if self.images:
            return self.images[k - 1] if 1 <= k <= len(self.images) else None
        return self.image_path if k == 1 else None


class JobAction(StrEnum):
    """What someone does with an existing job; ``bot.access`` decides who may, for each."""

    VIEW = "view"  # see it listed with its image (remix credit, inline search)
    SHOW = "show"  # post it again or send its original file (rate-limited)
    DETAILS = "details"  # its prompt, style and seed (Info)
    DERIVE = "derive"  # reroll, variations, restyle
    REMIX = "remix"
    SHARE_OUTSIDE = "share_outside"  # send it into any chat (Telegram inline mode)


class DeriveKind(StrEnum):
    """The ways to make a new image from an existing one (``CoreApi.derive``).

    The seed rule lives in the core (``bot.derive``), the same for every platform.
    """

    REROLL = "reroll"  # same prompt and style, a new random seed
    VARY = "vary"  # a seed close to the parent's (a random step of 1..VARIATION_SPREAD)
    RESTYLE = "restyle"  # same seed, another style: shows what the style changes
    REMIX = "remix"  # someone else's shared image (or your own) as it was, credited
    # Iteration on image k of a job (issue 13); the seed rule and the strengths: bot.derive.
    PICK = "pick"  # image k alone, full size, as its own job (no GPU work)
    VARY_SUBTLE = "vary_subtle"  # img2img of image k, a fresh seed, strength VARY_SUBTLE
    VARY_STRONG = "vary_strong"  # the same at VARY_STRONG
    UPSCALE_SUBTLE = "upscale_subtle"  # image k larger (UPSCALE_LONG_SIDE), UPSCALE_SUBTLE
    UPSCALE_CREATIVE = "upscale_creative"  # the same at UPSCALE_CREATIVE
    ENHANCE = "enhance"  # the same prompt, settings and seed, with the prompt enhanced (✨)

    @property
    def action(self) -> JobAction:
        """What permission this needs on the parent job."""
        return JobAction.REMIX if self is DeriveKind.REMIX else JobAction.DERIVE


@dataclass(frozen=True, slots=True)
class Credit:
    """ "remix of #job_id by name": made from somebody else's image. Adapters render it."""

    job_id: int
    name: str


@dataclass(frozen=True, slots=True)
class VoteResult:
    """A share's score after a vote, and the voter's own vote now (1, -1, or 0 for none)."""

    score: int
    my_vote: int


@dataclass(frozen=True, slots=True)
class Ticket:
    """What the user is told right after a successful submit (the row is already committed)."""

    job: Job
    position: int  # 1 = next to run
    eta_s: float


# --- community (issue 6) -------------------------------------------------------------------


class Language(StrEnum):
    """Language of the bot's replies in one server."""

    EN = "en"
    ZH = "zh"


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """One Discord server's or Telegram group's settings, as its admins set them.

    ``None`` limits mean "the operator's default"; values above the operator's are clamped
    down when used. An empty ``allowed_styles`` allows every installed style. ``language``
    ``None`` (not chosen) lets each user read replies in their own client's language.
    """

    platform: Platform
    server_id: str
    default_style: str | None = None
    allowed_styles: tuple[str, ...] = ()
    rate_per_minute: float | None = None
    rate_burst: int | None = None
    max_pending_per_user: int | None = None
    showcase_channel_id: str | None = None
    banned_words: tuple[str, ...] = ()
    allow_external_share: bool = True
    language: Language | None = None
    safety_check: SafetyMode | None = None  # None: the operator's default

    @property
    def server_key(self) -> str:
        return f"{self.platform}:{self.server_id}"


SETTINGS_FIELDS = (
    "default_style",
    "allowed_styles",
    "rate_per_minute",
    "rate_burst",
    "max_pending_per_user",
    "showcase_channel_id",
    "banned_words",
    "allow_external_share",
    "language",
    "safety_check",
)
"""The fields of :class:`ServerSettings` an admin may change (or clear)."""


@dataclass(frozen=True, slots=True)
class SettingsChange:
    """An admin's change to :class:`ServerSettings`: ``None`` leaves a field unchanged.

    ``clear`` names fields (from :data:`SETTINGS_FIELDS`) to reset to their default; a field
    both set and cleared is a bad request.
    """

    default_style: str | None = None
    allowed_styles: tuple[str, ...] | None = None
    rate_per_minute: float | None = None
    rate_burst: int | None = None
    max_pending_per_user: int | None = None
    showcase_channel_id: str | None = None
    banned_words: tuple[str, ...] | None = None
    allow_external_share: bool | None = None
    language: Language | None = None
    safety_check: SafetyMode | None = None
    clear: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class UserPrivacy:
    """A user's sharing choices: opted out users never appear in galleries or showcases."""

    share_opt_out: bool = False
    hide_details: bool = False  # shares show the image and credit, not prompt/style/seed


@dataclass(frozen=True, slots=True)
class ShareTicket:
    """What an adapter needs to post a shared image to the showcase channel."""

    share_id: int
    job: Job
    channel_id: str
    credit_name: str
    show_details: bool
    message_id: str | None = None  # set when it was already posted there: don't post it twice


@dataclass(frozen=True, slots=True)
class GalleryItem:
    """One shared image in a server's gallery; ``score`` is the sum of votes."""

    share_id: int
    job: Job
    score: int
    shared_at: float
    message_id: str | None
    credit_name: str
    show_details: bool


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One admin action in a server (settings change, deletion, block), for ``audit_log``."""

    id: int
    at: float
    server_key: str
    actor_user_id: str
    action: str
    target: str
    detail: str
