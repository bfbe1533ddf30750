"""Turn a user's :class:`GenerateRequest` into a complete :class:`GenerationSpec`, or say why not.

Every platform's requests pass through here once, so the messages are the same everywhere.
Randomness (the seed when none is given) is injected so tests repeat.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import replace
from pathlib import PurePosixPath

from bot.commands import merge_prompt_options
from bot.domain import (
    ASPECTS,
    DEFAULT_ASPECT,
    MAX_CFG,
    MAX_IMAGES,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    MAX_STRENGTH,
    MIN_CFG,
    MIN_IMAGES,
    MIN_STRENGTH,
    TURBO_STEPS,
    GenerateRequest,
    GenerationSpec,
    JobKind,
    Requester,
    SettingsChange,
    StepRange,
)
from bot.errors import BadPrompt, BadRequest, NotFound, UnknownStyle
from bot.i18n import msg

# Words that mean "no style" (for one image, a user's default, a server's default), the one
# set every adapter uses.
NO_STYLE = frozenset({"none", "off", "no", "default", "clear", "-"})
# Characters that draw nothing yet are letters or symbols to Unicode, so no category catches
# them: Hangul fillers, the blank Braille pattern, and the replacement characters a broken
# (lone surrogate) or unknown character becomes.
_INVISIBLE = frozenset("\u3164\u115f\u1160\uffa0\u2800\ufffd\ufffc")
# Format characters (zero-width space/joiners, LRM/RLM, word joiner, invisible operators, BOM,
# tag characters ...), lone combining marks (U+034F, variation selectors), and controls.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Mn", "Me", "Cc", "Cs", "Co", "Cn", "Zl", "Zp"})
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
MAX_NAME_CHARS = 100  # a display name or an id longer than this is cut (Discord's is 32)


def sanitise_text(text: str) -> str:
    """Any user string, made safe to store and send: done once where text enters the core.

    A lone surrogate (a broken emoji a client sent as a JSON escape) cannot be encoded as
    UTF-8, so SQLite and every platform would refuse it: it becomes U+FFFD. NUL and the other
    C0/C1 controls (but line breaks and tabs) go.
    """
    fixed = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return "".join(ch for ch in fixed if ch in "\n\t" or unicodedata.category(ch) != "Cc")


def sanitise_name(text: str) -> str:
    """A display name or platform id: sanitised, on one line, at most MAX_NAME_CHARS long."""
    return " ".join(sanitise_text(text).split())[:MAX_NAME_CHARS]


def normalise_prompt(text: str) -> str:
    """NFC, control characters removed (line breaks and tabs become spaces), ends trimmed."""
    text = unicodedata.normalize("NFC", text)
    out: list[str] = []
    for ch in text:
        if ch in "\n\r\t\v\f":
            out.append(" ")
        elif unicodedata.category(ch) == "Cc" or ch in _BIDI_CONTROLS:
            continue
        else:
            out.append(ch)
    return "".join(out).strip()


def sanitise_optional(text: str | None) -> str | None:
    return None if text is None else sanitise_text(text)


def clean_requester(requester: Requester) -> Requester:
    """The requester with every string sanitised (names and ids come from the platform's user)."""
    return replace(
        requester,
        user_id=sanitise_text(requester.user_id),
        display_name=sanitise_name(requester.display_name),
        channel_id=sanitise_text(requester.channel_id),
        server_id=sanitise_optional(requester.server_id),
        reply_to=sanitise_optional(requester.reply_to),
    )


def clean_request(request: GenerateRequest) -> GenerateRequest:
    """A request with every string sanitised; numbers are range-checked by :func:`validate`."""
    return replace(
        request,
        requester=clean_requester(request.requester),
        prompt=sanitise_text(request.prompt),
        style=sanitise_optional(request.style),
        aspect=sanitise_optional(request.aspect),
        negative_prompt=sanitise_optional(request.negative_prompt),
    )


def clean_change(change: SettingsChange) -> SettingsChange:
    """A settings change with every string sanitised."""
    return replace(
        change,
        default_style=sanitise_optional(change.default_style),
        allowed_styles=_clean_all(change.allowed_styles),
        showcase_channel_id=sanitise_optional(change.showcase_channel_id),
        banned_words=_clean_all(change.banned_words),
        clear=frozenset(sanitise_text(name) for name in change.clear),
    )


def _clean_all(items: tuple[str, ...] | None) -> tuple[str, ...] | None:
    return None if items is None else tuple(sanitise_text(i) for i in items)


MAX_ID = 2**63 - 1  # SQLite's largest integer; job and share ids are far below it


def check_job_id(job_id: int) -> int:
    """A job (or share) id from a user: beyond SQLite's integers it names nothing."""
    if not 1 <= job_id <= MAX_ID:
        raise NotFound(msg("core.no_such_job", job=job_id))
    return job_id


def clamp_page(page: int, pages: int) -> int:
    """A 1-based page number from a user (or forged button data), inside 1..pages."""
    return max(1, min(page, max(1, pages)))


def is_blank(text: str) -> bool:
    """True when nothing visible remains once whitespace and invisible characters are gone."""
    return all(
        ch.isspace() or ch in _INVISIBLE or unicodedata.category(ch) in _INVISIBLE_CATEGORIES
        for ch in text
    )


def check_prompt(raw: str, *, what: str = "core.what.prompt") -> str:
    """``what`` is the catalogue key naming the field (the prompt or the negative prompt)."""
    prompt = normalise_prompt(raw)
    if is_blank(prompt):
        raise BadPrompt(msg("core.prompt_empty", what=msg(what)))
    if len(prompt) > MAX_PROMPT_CHARS:
        raise BadPrompt(
            msg("core.prompt_too_long", what=msg(what), length=len(prompt), limit=MAX_PROMPT_CHARS)
        )
    return prompt


def resolve_aspect(raw: str | None) -> tuple[int, int]:
    name = DEFAULT_ASPECT if raw is None else raw.strip().replace("x", ":").replace("/", ":")
    aspect = ASPECTS.get(name)
    if aspect is None:
        raise BadRequest(msg("core.unknown_aspect", aspect=repr(raw), known=", ".join(ASPECTS)))
    return aspect.width, aspect.height


def check_steps(steps: int | None, limits: StepRange = TURBO_STEPS) -> int:
    if steps is None:
        return limits.default
    if not limits.low <= steps <= limits.high:
        raise BadRequest(msg("core.steps_range", low=limits.low, high=limits.high, value=steps))
    return steps


def check_seed(seed: int | None, rng: random.Random) -> int:
    return rng.randint(0, MAX_SEED) if seed is None else check_seed_range(seed)


def check_seed_range(seed: int) -> int:
    if not 0 <= seed <= MAX_SEED:
        raise BadRequest(msg("core.seed_range", high=MAX_SEED, value=seed))
    return seed


def check_cfg(cfg: float | None, negative: str | None) -> tuple[float, str | None]:
    value = MIN_CFG if cfg is None else cfg
    if not MIN_CFG <= value <= MAX_CFG:
        raise BadRequest(
            msg("core.cfg_range", low=f"{MIN_CFG:g}", high=f"{MAX_CFG:g}", value=f"{value:g}")
        )
    if negative is None:
        return value, None
    if value <= MIN_CFG:
        raise BadRequest(msg("core.negative_needs_cfg"))
    return value, check_prompt(negative, what="core.what.negative_prompt")


def resolve_style(requested: str | None, default: str | None, known: list[str]) -> str | None:
    """The style to use: the requested one, else the user's default (if still installed)."""
    if requested is None:
        return default if default in known else None
    name = requested.strip().lower()
    if name in NO_STYLE:
        return None
    if name not in known:
        raise UnknownStyle(requested, known)
    return name


def validate(
    request: GenerateRequest,
    *,
    known_styles: list[str],
    default_style: str | None,
    rng: random.Random,
    steps: StepRange = TURBO_STEPS,
    max_images: int = MAX_IMAGES,
    options_in_prompt: bool = True,
    has_image: bool = False,
) -> GenerationSpec:
    """A complete spec for the engine, or a :class:`BadRequest` saying what to fix.

    Options typed inside the prompt are read first (:mod:`bot.commands`), so every platform
    gets the same syntax. ``options_in_prompt=False`` is for a prompt that was parsed when it
    was first submitted (a reroll of a stored job). ``has_image``: the request comes with an
    input image, the only case where a strength means something.
    """
    if options_in_prompt:
        request = merge_prompt_options(request)
    prompt = check_prompt(request.prompt)
    width, height = resolve_aspect(request.aspect)
    cfg, negative = check_cfg(request.cfg, request.negative_prompt)
    return GenerationSpec(
        prompt=prompt,
        style=resolve_style(request.style, default_style, known_styles),
        seed=check_seed(request.seed, rng),
        steps=check_steps(request.steps, steps),
        width=width,
        height=height,
        cfg=cfg,
        negative_prompt=negative,
        n=check_images(MIN_IMAGES if request.n is None else request.n, max_images),
        strength=check_requested_strength(request.strength, has_image=has_image),
        enhance=bool(request.enhance),
    )


def check_spec(spec: GenerationSpec, steps: StepRange = TURBO_STEPS) -> None:
    """Check a complete spec by the same rules as :func:`validate`.

    The engine calls this too: specs from ``turbobot imagine`` or a worker's queue never went
    through :func:`validate`, and must fail with the same clear words.
    """
    check_prompt(spec.prompt)
    check_steps(spec.steps, steps)
    check_seed_range(spec.seed)
    check_cfg(spec.cfg, spec.negative_prompt)
    if spec.aspect not in ASPECTS:
        size = f"{spec.width}x{spec.height}"
        raise BadRequest(msg("core.unsupported_size", size=size, known=", ".join(ASPECTS)))
    check_images(spec.n)
    check_image_input(spec)


def check_images(n: int, high: int = MAX_IMAGES) -> int:
    """``high``: the operator's cap (``TURBOBOT_MAX_IMAGES``), at most MAX_IMAGES."""
    if not MIN_IMAGES <= n <= high:
        raise BadRequest(msg("core.images_range", low=MIN_IMAGES, high=high, value=n))
    return n


def check_requested_strength(strength: float | None, *, has_image: bool) -> float | None:
    """A user's strength: only with an input image (said first: without one, any value is
    wrong), then inside its range."""
    if strength is None:
        return None
    if not has_image:
        raise BadRequest(msg("core.strength_needs_image"))
    return check_strength(strength)


def check_strength(strength: float) -> float:
    if not MIN_STRENGTH <= strength <= MAX_STRENGTH:
        low, high, value = f"{MIN_STRENGTH:g}", f"{MAX_STRENGTH:g}", f"{strength:g}"
        raise BadRequest(msg("core.strength_range", low=low, high=high, value=value))
    return strength


def check_image_input(spec: GenerationSpec) -> None:
    """img2img kinds name an image inside the data dir; text-to-image names none."""
    if not spec.kind.needs_image:
        if spec.init_image is not None or spec.strength is not None:
            raise BadRequest(msg("core.image_options_without_image"))
        return
    if spec.strength is not None:
        check_strength(spec.strength)
    path = PurePosixPath(spec.init_image or "")
    if not spec.init_image or path.is_absolute() or ".." in path.parts or "\\" in spec.init_image:
        raise BadRequest(msg("core.image_needed"))
    if spec.kind is JobKind.UPSCALE and spec.n != 1:
        raise BadRequest(msg("core.upscale_one_image"))
