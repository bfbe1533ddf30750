"""Validation messages and defaults, the same for every platform."""

from __future__ import annotations

import random
from typing import Any

import pytest

from bot.domain import MAX_PROMPT_CHARS, GenerateRequest
from bot.errors import BadPrompt, BadRequest, UnknownStyle
from bot.validation import normalise_prompt, validate
from tests.core.conftest import user

STYLES = ["ink", "watercolor"]


def check(prompt: str = "a cat", default: str | None = None, **kw: object) -> object:
    request = GenerateRequest(user(), prompt, **kw)  # type: ignore[arg-type]
    return validate(request, known_styles=STYLES, default_style=default, rng=random.Random(1))


@pytest.mark.parametrize("prompt", ["", "   ", "\u200b\u200d\ufeff", "\n\t \u2060", "\x00\x07"])
def test_blank_prompts_are_refused(prompt: str) -> None:
    with pytest.raises(BadPrompt, match="Please describe the image"):
        check(prompt)


def test_long_prompt_says_the_limit() -> None:
    with pytest.raises(BadPrompt, match=f"5000 characters long; the limit is {MAX_PROMPT_CHARS}"):
        check("x" * 5000)


def test_prompt_is_normalised() -> None:
    # NFD "é" becomes NFC, control characters go, line breaks become spaces; emoji ZWJ stays.
    assert normalise_prompt("  cafe\u0301\x00\x1b[31m\nbar \U0001f469\u200d\U0001f4bb ") == (
        "caf\u00e9[31m bar \U0001f469\u200d\U0001f4bb"
    )


def test_defaults_and_random_seed() -> None:
    spec = check()
    expected_seed = random.Random(1).randint(0, 2**32 - 1)
    assert (spec.steps, spec.width, spec.height, spec.cfg) == (4, 1024, 1024, 1.0)  # type: ignore[attr-defined]
    assert spec.seed == expected_seed  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kw", "error", "message"),
    [
        ({"steps": 0}, BadRequest, "Steps must be from 1 to 8, not 0"),
        ({"steps": 9}, BadRequest, "Steps must be from 1 to 8, not 9"),
        ({"seed": -1}, BadRequest, "The seed must be from 0 to 4294967295"),
        ({"seed": 2**32}, BadRequest, "The seed must be from 0"),
        ({"aspect": "5:4"}, BadRequest, "Unknown aspect '5:4'. Choose one of: 1:1, 16:9"),
        ({"cfg": 0.5}, BadRequest, "CFG must be from 1 to 10, not 0.5"),
        ({"cfg": 11.0}, BadRequest, "CFG must be from 1 to 10"),
        ({"negative_prompt": "blur"}, BadRequest, "only works with CFG above 1"),
        ({"style": "oil"}, UnknownStyle, "Unknown style 'oil'. Available styles: ink, watercolor"),
    ],
)
def test_bad_values_get_clear_messages(
    kw: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as err:
        check(**kw)
    assert message in str(err.value)


def test_aspect_spellings_and_negative_with_cfg() -> None:
    spec = check(aspect="16x9", cfg=4.0, negative_prompt=" blurry ")
    assert (spec.width, spec.height, spec.negative_prompt) == (1360, 768, "blurry")  # type: ignore[attr-defined]


def test_style_default_override_and_none() -> None:
    assert check(default="ink").style == "ink"  # type: ignore[attr-defined]
    assert check(default="ink", style="Watercolor").style == "watercolor"  # type: ignore[attr-defined]
    assert check(default="ink", style="none").style is None  # type: ignore[attr-defined]
    assert check(default="removed-style").style is None  # type: ignore[attr-defined]


def test_images_per_prompt_default_and_operator_cap() -> None:
    assert check().n == 1  # type: ignore[attr-defined]
    request = GenerateRequest(user(), "a cat", n=3)
    spec = validate(request, known_styles=STYLES, default_style=None, rng=random.Random(1))
    assert spec.n == 3
    with pytest.raises(BadRequest, match="number of images must be from 1 to 2, not 3"):
        validate(
            request, known_styles=STYLES, default_style=None, rng=random.Random(1), max_images=2
        )


@pytest.mark.parametrize(
    ("strength", "has_image", "outcome"),
    [
        (0.5, True, 0.5),
        (0.05, True, 0.05),
        (1.0, True, 1.0),
        (0.01, True, "core.strength_range"),
        (1.5, True, "core.strength_range"),
        (0.5, False, "core.strength_needs_image"),
        (None, False, None),
    ],
)
def test_strength_only_with_an_input_image(
    strength: float | None, has_image: bool, outcome: object
) -> None:
    request = GenerateRequest(user(), "a cat", strength=strength)
    try:
        spec = validate(
            request,
            known_styles=STYLES,
            default_style=None,
            rng=random.Random(1),
            has_image=has_image,
        )
        got: object = spec.strength
    except BadRequest as err:
        got = err.key
    assert got == outcome


def test_a_stored_prompt_is_not_parsed_again() -> None:
    # A reroll of a job whose prompt (from before the one syntax) still holds "--ar 16:9".
    request = GenerateRequest(user(), "a cat --ar 16:9", aspect="1:1")
    spec = validate(
        request,
        known_styles=STYLES,
        default_style=None,
        rng=random.Random(1),
        options_in_prompt=False,
    )
    assert (spec.prompt, spec.aspect) == ("a cat --ar 16:9", "1:1")
