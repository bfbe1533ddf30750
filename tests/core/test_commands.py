"""The text grammar shared by the console and Telegram."""

from __future__ import annotations

import pytest

from bot.commands import (
    ImagineArgs,
    help_text,
    merge_prompt_options,
    parse_imagine_args,
    split_command,
)
from bot.domain import GenerateRequest
from bot.errors import BadRequest
from tests.core.conftest import user


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("/imagine@turbo_bot a cat", ("imagine", "a cat")),
        ("/Imagine   a cat  ", ("imagine", "a cat")),
        ("/imagine\na cat\non a roof", ("imagine", "a cat\non a roof")),
        ("/help", ("help", "")),
        ("a cat without a slash", ("", "a cat without a slash")),
        ("", ("", "")),
    ],
)
def test_split_command(line: str, expected: tuple[str, str]) -> None:
    assert split_command(line) == expected


def test_options_anywhere_and_the_rest_is_the_prompt() -> None:
    args = parse_imagine_args("a cat --style ink on a roof --seed=42 --steps 3 --aspect 16:9")
    assert args == ImagineArgs("a cat on a roof", style="ink", seed=42, steps=3, aspect="16:9")


def test_prompt_keeps_its_text_quotes_and_unicode() -> None:
    text = 'the "Moon\'s" glow,\n 月光 🌕  and rain'
    assert parse_imagine_args(text).prompt == text


def test_phone_dashes_start_options() -> None:
    args = parse_imagine_args("a fox \u2014seed 7 \u2013steps 2")
    assert (args.prompt, args.seed, args.steps) == ("a fox", 7, 2)


def test_negative_prompt_takes_words_until_the_next_option() -> None:
    args = parse_imagine_args("a portrait --cfg 4 --no blurry, extra fingers --seed 1")
    assert args.negative_prompt == "blurry, extra fingers"
    assert (args.cfg, args.seed, args.prompt) == (4.0, 1, "a portrait")


def test_quoted_option_values_are_unquoted() -> None:
    assert parse_imagine_args("x --style \u201cink\u201d").style == "ink"


def test_a_bare_double_dash_or_number_is_prompt_text() -> None:
    assert parse_imagine_args("left -- right --5").prompt == "left -- right --5"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a cat --seed abc", "--seed must be a whole number from 0 to 4294967295, not 'abc'"),
        ("a cat --steps 2.5", "--steps must be a whole number from 1 to 8"),
        ("a cat --cfg lots", "--cfg must be a number from 1 to 10, not 'lots'"),
        ("a cat --cfg nan", "--cfg must be a number"),
        ("a cat --size 5", "Unknown option --size. Options are: --style, --seed"),
        ("a cat --seed", "--seed needs a value, e.g. --seed 42"),
        ("a cat --seed 1 --seed 2", "--seed is given twice"),
        ("a cat --n 1.5", "--n must be a whole number from 1 to 4, not '1.5'"),
        ("a cat --strength x", "--strength must be a number from 0.05 to 1, not 'x'"),
        ("a cat --strength inf", "--strength must be a number from 0.05 to 1"),
    ],
)
def test_bad_options_say_what_to_fix(text: str, message: str) -> None:
    with pytest.raises(BadRequest) as err:
        parse_imagine_args(text)
    assert message in str(err.value)


def test_images_and_strength_options() -> None:
    args = parse_imagine_args("a cat --n 3 --strength 0,4")
    assert (args.prompt, args.n, args.strength) == ("a cat", 3, 0.4)


def test_the_option_names_as_typed_are_kept() -> None:
    assert parse_imagine_args("a cat --AR 16:9 --no x").names == {
        "aspect": "ar",
        "negative_prompt": "no",
    }


def test_merge_takes_the_options_out_of_the_prompt() -> None:
    who = user()
    merged = merge_prompt_options(GenerateRequest(who, "a cat --seed 3 --n 2", parent_job_id=7))
    assert merged == GenerateRequest(who, "a cat", seed=3, n=2, parent_job_id=7)
    plain = GenerateRequest(who, "a cat", seed=5)
    assert merge_prompt_options(plain) == plain


def test_help() -> None:
    text = help_text()
    for command in ("/imagine", "/style", "/history", "/queue", "/cancel", "/help", "--aspect"):
        assert command in text
    assert "--n N         1 to 4 images" in text
    assert "--strength X  0.05 to 1" in text
