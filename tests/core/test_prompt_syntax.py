"""One prompt syntax, parsed once in the core: options typed inside any prompt (issue 13).

The table lists what a user types and what the core makes of it: the spec it queues, or the
catalogue key of the error. The same table runs over the Discord and Telegram fakes and the
console in tests/test_same_on_both_platforms.py, so every platform parses alike.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain import GenerateRequest, GenerationSpec
from bot.errors import BadRequest, TurbobotError
from tests.core.conftest import OpenCore, user

# What a user typed → the fields of the queued spec, or the key of the error.
SYNTAX: list[tuple[str, dict[str, object] | str]] = [
    ("a cat --ar 16:9", {"prompt": "a cat", "aspect": "16:9"}),
    ("a cat --aspect=9:16 on a roof", {"prompt": "a cat on a roof", "aspect": "9:16"}),
    ("a fox --seed 42 --steps 3", {"prompt": "a fox", "seed": 42, "steps": 3}),
    ("a fox \u2014seed 7 \u2013steps 2", {"prompt": "a fox", "seed": 7, "steps": 2}),
    (
        "a portrait --cfg 4 --no blurry, text --seed 1",
        {"prompt": "a portrait", "cfg": 4.0, "negative_prompt": "blurry, text", "seed": 1},
    ),
    ("a portrait --cfg 3 --negative hands", {"cfg": 3.0, "negative_prompt": "hands"}),
    ("a cat --style ink", {"prompt": "a cat", "style": "ink"}),
    ("a cat --n 4", {"prompt": "a cat", "n": 4}),
    ("a cat --N=2", {"prompt": "a cat", "n": 2}),
    ("a cat", {"prompt": "a cat", "n": 1, "aspect": "1:1", "strength": None}),
    ("left -- right --5", {"prompt": "left -- right --5"}),
    ("a cat --n 5", "core.images_range"),
    ("a cat --n 0", "core.images_range"),
    ("a cat --n two", "core.option_type"),
    ("a cat --strength 0.5", "core.strength_needs_image"),
    ("a cat --strength 2", "core.strength_needs_image"),  # no image: any value is wrong
    ("a cat --strength much", "core.option_type"),
    ("a cat --ar 5:4", "core.unknown_aspect"),
    ("a cat --seed -1", "core.seed_range"),
    ("a cat --steps 99", "core.steps_range"),
    ("a cat --cfg lots", "core.option_cfg"),
    ("a cat --no text", "core.negative_needs_cfg"),
    ("a cat --size 5", "core.unknown_option"),
    ("a cat --seed", "core.option_needs_value"),
    ("a cat --seed 1 --seed 2", "core.option_twice"),
    ("a cat --style oil", "core.unknown_style"),
    ("--seed 5", "core.prompt_empty"),
]


def outcome(spec: GenerationSpec, expected: dict[str, object]) -> dict[str, object]:
    """The spec's fields that the row names (``aspect`` by name)."""
    return {field: getattr(spec, field) for field in expected}


async def submit(core: Any, prompt: str, **options: Any) -> GenerationSpec | str:
    """The queued spec, or the error's catalogue key."""
    try:
        ticket = await core.submit(GenerateRequest(user(), prompt, **options))
    except TurbobotError as err:
        return err.key or f"an error without a catalogue key: {err}"
    spec: GenerationSpec = ticket.job.spec
    return spec


@pytest.mark.parametrize(("typed", "expected"), SYNTAX, ids=[row[0] for row in SYNTAX])
async def test_options_typed_in_the_prompt(
    open_test_core: OpenCore, typed: str, expected: dict[str, object] | str
) -> None:
    async with open_test_core() as core:
        got = await submit(core, typed)
    if isinstance(expected, str):
        assert got == expected
    else:
        assert isinstance(got, GenerationSpec), got
        assert outcome(got, expected) == expected


async def test_the_operator_caps_images_per_prompt(open_test_core: OpenCore) -> None:
    async with open_test_core(TURBOBOT_MAX_IMAGES=2) as core:
        assert await submit(core, "a cat --n 3") == "core.images_range"
        with pytest.raises(BadRequest, match="from 1 to 2, not 3"):
            await core.submit(GenerateRequest(user(), "a cat", n=3))
        spec = await submit(core, "a cat --n 2")
    assert isinstance(spec, GenerationSpec)
    assert spec.n == 2


@pytest.mark.parametrize(
    ("typed", "options", "expected"),
    [
        # The same value both ways is no conflict.
        ("a cat --ar 16:9", {"aspect": "16:9"}, {"aspect": "16:9", "prompt": "a cat"}),
        ("a cat --style INK", {"style": "ink"}, {"style": "ink"}),
        ("a cat --cfg 3", {"cfg": 3.0, "negative_prompt": "x"}, {"cfg": 3.0}),
        # Different values: an error naming both, whichever the option.
        ("a cat --ar 16:9", {"aspect": "9:16"}, "core.option_conflict"),
        ("a cat --seed 1", {"seed": 2}, "core.option_conflict"),
        ("a cat --steps 3", {"steps": 2}, "core.option_conflict"),
        ("a cat --style ink", {"style": "watercolor"}, "core.option_conflict"),
        ("a cat --cfg 3 --no text", {"negative_prompt": "hands"}, "core.option_conflict"),
        ("a cat --cfg 3", {"cfg": 4.0}, "core.option_conflict"),
        ("a cat --n 2", {"n": 3}, "core.option_conflict"),
        # An option given only one way is simply used.
        ("a cat --cfg 3", {"negative_prompt": "hands"}, {"negative_prompt": "hands"}),
        ("a cat --seed 9", {"n": 2}, {"seed": 9, "n": 2}),
    ],
)
async def test_an_option_given_both_ways(
    open_test_core: OpenCore,
    typed: str,
    options: dict[str, Any],
    expected: dict[str, object] | str,
) -> None:
    async with open_test_core() as core:
        got = await submit(core, typed, **options)
    if isinstance(expected, str):
        assert got == expected
    else:
        assert isinstance(got, GenerationSpec), got
        assert outcome(got, expected) == expected


async def test_the_conflict_names_both_values(open_test_core: OpenCore) -> None:
    async with open_test_core() as core:
        with pytest.raises(BadRequest) as err:
            await core.submit(GenerateRequest(user(), "a cat --ar 16:9", aspect="9:16"))
    text = str(err.value)
    assert "--ar" in text
    assert "9:16" in text
    assert "16:9" in text
    assert "--ar" in err.value.render("zh")


async def test_a_huge_prompt_is_refused_as_too_long_without_being_parsed(
    open_test_core: OpenCore,
) -> None:
    # Options cannot bring a prompt of megabytes under the limit: it is refused as it is.
    async with open_test_core() as core:
        assert await submit(core, "word " * 200_000 + "--seed 5") == "core.prompt_too_long"
