"""Turn a user's :class:`GenerateRequest` into a complete :class:`GenerationSpec`, or say why not.

Every platform's requests pass through here once, so the messages are the same everywhere.
Randomness (the seed when none is given) is injected so tests repeat.
"""

from __future__ import annotations

import random
import unicodedata

from bot.domain import (
    ASPECTS,
    DEFAULT_ASPECT,
    MAX_CFG,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    MIN_CFG,
    TURBO_STEPS,
    GenerateRequest,
    GenerationSpec,
    StepRange,
)
from bot.errors import BadPrompt, BadRequest, UnknownStyle

# Words that mean "no style", so a user can override their own default for one image.
NO_STYLE = frozenset({"none", "off", "no", "default"})
# Invisible characters that make a prompt look non-empty: zero-width space/joiners, word joiner,
# BOM, soft hyphen, Mongolian vowel separator, Hangul fillers.
_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e\u3164\u115f\u1160")
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


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


def is_blank(text: str) -> bool:
    """True when nothing visible remains once whitespace and zero-width characters are gone."""
    return all(ch.isspace() or ch in _INVISIBLE for ch in text)


def check_prompt(raw: str, *, what: str = "prompt") -> str:
    prompt = normalise_prompt(raw)
    if is_blank(prompt):
        raise BadPrompt(f"Please describe the image: the {what} is empty.")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise BadPrompt(
            f"The {what} is {len(prompt)} characters long; the limit is {MAX_PROMPT_CHARS}. "
            "Please shorten it."
        )
    return prompt


def resolve_aspect(raw: str | None) -> tuple[int, int]:
    name = DEFAULT_ASPECT if raw is None else raw.strip().replace("x", ":").replace("/", ":")
    aspect = ASPECTS.get(name)
    if aspect is None:
        raise BadRequest(f"Unknown aspect {raw!r}. Choose one of: {', '.join(ASPECTS)}.")
    return aspect.width, aspect.height


def check_steps(steps: int | None, limits: StepRange = TURBO_STEPS) -> int:
    if steps is None:
        return limits.default
    if not limits.low <= steps <= limits.high:
        raise BadRequest(f"Steps must be from {limits.low} to {limits.high}, not {steps}.")
    return steps


def check_seed(seed: int | None, rng: random.Random) -> int:
    return rng.randint(0, MAX_SEED) if seed is None else check_seed_range(seed)


def check_seed_range(seed: int) -> int:
    if not 0 <= seed <= MAX_SEED:
        raise BadRequest(f"The seed must be from 0 to {MAX_SEED}, not {seed}.")
    return seed


def check_cfg(cfg: float | None, negative: str | None) -> tuple[float, str | None]:
    value = MIN_CFG if cfg is None else cfg
    if not MIN_CFG <= value <= MAX_CFG:
        raise BadRequest(f"CFG must be from {MIN_CFG:g} to {MAX_CFG:g}, not {value:g}.")
    if negative is None:
        return value, None
    if value <= MIN_CFG:
        raise BadRequest(
            "A negative prompt (--no) only works with CFG above 1, e.g. --cfg 4 "
            "(it makes each image about twice as slow)."
        )
    return value, check_prompt(negative, what="negative prompt")


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
) -> GenerationSpec:
    """A complete spec for the engine, or a :class:`BadRequest` saying what to fix."""
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
        raise BadRequest(
            f"{spec.width}x{spec.height} is not a supported size; use one of {', '.join(ASPECTS)}."
        )
