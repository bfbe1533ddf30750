"""Derived images: one rule per kind for the seed, the strength and the input image.

* reroll: a new random seed (same prompt and style, a different picture);
* vary: the parent's seed plus a random step of 1..``VARIATION_SPREAD``: close to the parent,
  and random so that pressing Variations twice does not make the same image twice;
* restyle and remix: the parent's seed, so only the style (or nothing) changes;
* enhance (✨): the parent's seed and settings with ``enhance`` on: only the prompt changes;
* iteration on image k of a job (issue 13): pick (image k alone, no GPU work), vary subtle /
  strong (img2img of image k from a fresh seed), remix with an edited prompt (img2img of
  image k at its own seed), upscale subtle / creative (image k larger, at its own seed). The
  input image is the parent's stored file, a path relative to the data dir.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from bot.domain import (
    DEFAULT_IMG2IMG_STRENGTH,
    MAX_SEED,
    UPSCALE_CREATIVE,
    UPSCALE_SUBTLE,
    VARY_STRONG,
    VARY_SUBTLE,
    DeriveKind,
    GenerationSpec,
    Job,
    JobKind,
    image_seed,
)
from bot.errors import BadRequest, NotFound
from bot.i18n import msg
from bot.images import InputImage
from bot.validation import check_image_input, check_images

VARIATION_SPREAD = 64  # a variation's seed is at most this far from its parent's

# The img2img kinds: what the engine runs, at what strength.
_FROM_IMAGE: dict[DeriveKind, tuple[JobKind, float]] = {
    DeriveKind.VARY_SUBTLE: (JobKind.VARY, VARY_SUBTLE),
    DeriveKind.VARY_STRONG: (JobKind.VARY, VARY_STRONG),
    DeriveKind.UPSCALE_SUBTLE: (JobKind.UPSCALE, UPSCALE_SUBTLE),
    DeriveKind.UPSCALE_CREATIVE: (JobKind.UPSCALE, UPSCALE_CREATIVE),
}


@dataclass(frozen=True, slots=True)
class Derivation:
    """The new job's spec; for a pick, the parent's file that becomes its image."""

    spec: GenerationSpec
    picked: str | None = None


@dataclass(frozen=True, slots=True)
class Iteration:
    """What a user chose beyond the kind: image ``index`` (1-based, as U1..U4 count), and
    for a remix an edited prompt and a strength (both None: the image as it was made)."""

    index: int = 1
    prompt: str | None = None
    strength: float | None = None

    @property
    def edits(self) -> bool:
        return self.prompt is not None or self.strength is not None


def derived_seed(kind: DeriveKind, parent_seed: int, rng: random.Random) -> int:
    """The seed of a seed-only ``kind`` derived from a job with ``parent_seed``."""
    match kind:
        case DeriveKind.VARY:
            return (parent_seed + rng.randint(1, VARIATION_SPREAD)) % (MAX_SEED + 1)
        case DeriveKind.RESTYLE | DeriveKind.REMIX | DeriveKind.ENHANCE:
            return parent_seed
        case _:  # reroll, and the fresh seed of vary subtle / strong
            return rng.randint(0, MAX_SEED)


def derive_spec(
    kind: DeriveKind, parent: Job, choice: Iteration, rng: random.Random, style: str | None
) -> Derivation:
    """The spec of ``kind`` made from ``parent`` (``style``: the resolved style to use)."""
    spec = replace(parent.spec, style=style)
    if kind is DeriveKind.ENHANCE:  # the same picture's settings: only the prompt changes
        spec = replace(spec, enhance=True)
    if (
        kind in _FROM_IMAGE
        or kind is DeriveKind.PICK
        or (kind is DeriveKind.REMIX and choice.edits)
    ):
        return _from_image(kind, parent, spec, choice, rng)
    return Derivation(replace(spec, seed=derived_seed(kind, spec.seed, rng)))


def _from_image(
    kind: DeriveKind, parent: Job, spec: GenerationSpec, choice: Iteration, rng: random.Random
) -> Derivation:
    image = image_of(parent, choice.index)
    own_seed = image_seed(parent.spec.seed, choice.index - 1)
    one = replace(spec, n=1, seed=own_seed, strength=None)
    if kind is DeriveKind.PICK:
        # Exactly the picture a one-image job with its seed makes, so a reroll of it works.
        return Derivation(replace(one, kind=parent.spec.kind, init_image=parent.spec.init_image,
                                  strength=parent.spec.strength), picked=image)  # fmt: skip
    if kind is DeriveKind.REMIX:
        strength = DEFAULT_IMG2IMG_STRENGTH if choice.strength is None else choice.strength
        prompt = spec.prompt if choice.prompt is None else choice.prompt
        return Derivation(
            replace(one, prompt=prompt, kind=JobKind.REMIX, init_image=image, strength=strength)
        )
    job_kind, strength = _FROM_IMAGE[kind]
    seed = derived_seed(kind, own_seed, rng) if job_kind is JobKind.VARY else own_seed
    return Derivation(replace(one, seed=seed, kind=job_kind, init_image=image, strength=strength))


def image_of(parent: Job, index: int) -> str:
    """Image ``index`` of ``parent`` (relative to the data dir), or why there is none."""
    count = max(1, parent.spec.n)
    if not 1 <= index <= count:
        raise BadRequest(msg("core.no_such_image", job_id=parent.id, index=index, count=count))
    relative = parent.image_of(index)
    if relative is None:
        raise NotFound(msg("core.image_gone", job_id=parent.id))
    return relative


def iteration_fields(spec: GenerationSpec, source: GenerationSpec) -> GenerationSpec:
    """``spec`` (validated again from ``source``'s text settings) with ``source``'s images,
    kind, input image and strength, checked by the same rules as every spec."""
    merged = replace(
        spec,
        n=check_images(source.n),
        kind=source.kind,
        init_image=source.init_image,
        strength=source.strength,
    )
    check_image_input(merged)
    return merged


def with_upload(
    spec: GenerationSpec, upload: InputImage, relative: str, strength: float | None
) -> GenerationSpec:
    """An image-input job: the upload's aspect, its stored file, the strength (default
    ``DEFAULT_IMG2IMG_STRENGTH``)."""
    merged = replace(
        spec,
        width=upload.aspect.width,
        height=upload.aspect.height,
        kind=JobKind.IMG2IMG,
        init_image=relative,
        strength=DEFAULT_IMG2IMG_STRENGTH if strength is None else strength,
    )
    check_image_input(merged)
    return merged
