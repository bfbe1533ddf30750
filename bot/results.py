"""What an executor answers (:class:`Generated`, with its :class:`Timings`; its
:class:`Progress`; the styles and the VLM features it offers) and what an adapter answers
(:class:`Delivered`). Re-exported by :mod:`bot.domain`."""

from __future__ import annotations

__all__ = [
    "VLM_FEATURES",
    "Delivered",
    "Generated",
    "ImageVerdict",
    "Progress",
    "RefusedStyle",
    "StyleChanges",
    "StyleInfo",
    "StyleScan",
    "Timings",
    "VlmAvailability",
    "VlmFeature",
]

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Timings:
    """Milliseconds spent in each stage of one generation."""

    text_encode_ms: float = 0.0
    denoise_ms: float = 0.0
    decode_ms: float = 0.0
    jpeg_ms: float = 0.0
    step_ms: tuple[float, ...] = ()

    @property
    def total_ms(self) -> float:
        return self.text_encode_ms + self.denoise_ms + self.decode_ms + self.jpeg_ms


@dataclass(frozen=True, slots=True)
class Generated:
    """An executor's answer: the JPEG bytes and where the time went.

    ``jpeg`` is what to post: the image, or for ``n > 1`` the grid (``engine.grid``).
    ``images`` holds each image's full-size JPEG when ``n > 1`` (empty for one image);
    ``width``/``height`` are one image's size.
    """

    jpeg: bytes
    width: int
    height: int
    timings: Timings = field(default_factory=Timings)
    images: tuple[bytes, ...] = ()

    @property
    def count(self) -> int:
        return max(1, len(self.images))


@dataclass(frozen=True, slots=True)
class StyleInfo:
    """A style LoRA as users see it (no paths, no tensors)."""

    name: str
    display_name: str
    display_name_zh: str
    description: str
    strength: float
    preview_path: str | None = None
    nsfw: bool = False  # manifest ``nsfw = true``: only in age-restricted channels


@dataclass(frozen=True, slots=True)
class RefusedStyle:
    """A style folder that failed its checks: why, as a catalogue key with its parameters (for
    the admin who asked, in their language) and in English detail (for the operator's log)."""

    name: str
    reason_key: str
    reason_params: tuple[tuple[str, str], ...] = ()
    detail: str = ""


@dataclass(frozen=True, slots=True)
class StyleScan:
    """What an executor's style rescan found: the styles it offers now, and the refused ones."""

    styles: tuple[StyleInfo, ...]
    refused: tuple[RefusedStyle, ...] = ()


@dataclass(frozen=True, slots=True)
class StyleChanges:
    """What a style rescan changed: names added and removed, every style now offered, and
    the folders refused (with why)."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    styles: tuple[str, ...]
    refused: tuple[RefusedStyle, ...] = ()


@dataclass(frozen=True, slots=True)
class ImageVerdict:
    """What the image safety check said about one job's image(s) (issue 14).

    ``score`` is the model's lean towards "unsafe" (a logit margin: above 0 it is flagged);
    for a grid, the highest of its images. ``policy`` is the policy text it was checked against.
    """

    flagged: bool
    score: float
    policy: str


@dataclass(frozen=True, slots=True)
class Progress:
    """Step ``step`` of ``total`` is done for job ``job_id``."""

    job_id: int
    step: int
    total: int


@dataclass(frozen=True, slots=True)
class Delivered:
    """Where a result was posted, for later lookup, reroll and sharing."""

    message_id: str
    channel_id: str
    # Optional platform handle to the uploaded file (Telegram's photo ``file_id``); the core
    # stores it as ``Job.posted_file_ref`` so inline sharing works after a restart.
    file_ref: str | None = None


VLM_FEATURES = ("describe", "enhance", "safety")


@dataclass(frozen=True, slots=True)
class VlmFeature:
    """One feature of the loaded vision-language model: usable or not, and a sentence why
    (names files and settings: for the operator's ``turbobot doctor`` and the log)."""

    name: str  # one of VLM_FEATURES
    available: bool
    why: str


@dataclass(frozen=True, slots=True)
class VlmAvailability:
    """What the executor's text encoder can do, from the engine's check at load."""

    features: tuple[VlmFeature, ...] = ()

    def available(self, name: str) -> bool:
        return any(f.name == name and f.available for f in self.features)

    @classmethod
    def none(cls, why: str) -> VlmAvailability:
        """Every feature unavailable for the same reason (no VLM loaded, a remote pool)."""
        return cls(tuple(VlmFeature(name, False, why) for name in VLM_FEATURES))
