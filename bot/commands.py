"""The one prompt syntax: options typed inside any prompt, on every platform.

``a cat on a roof --style ink --seed 42`` → :class:`ImagineArgs`. Options may appear anywhere;
everything else is the prompt, kept as typed (quotes, emoji, line breaks). There is no shell
quoting on purpose: chat users type apostrophes and smart quotes, and ``shlex`` would reject
half of them. Phones turn ``--`` into an em or en dash, so those start options too.

The core applies it to every :class:`GenerateRequest` it validates
(:func:`merge_prompt_options`), so a Discord prompt, a Telegram message, a console line and a
remix's edited prompt are read alike. :func:`split_command` finds the command word of a text
command (console, Telegram).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, replace

from bot.domain import (
    ASPECTS,
    MAX_IMAGES,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    MAX_STEPS,
    MAX_STRENGTH,
    MIN_IMAGES,
    MIN_STEPS,
    MIN_STRENGTH,
    GenerateRequest,
    Language,
)
from bot.errors import BadRequest
from bot.i18n import Message, msg, t

_OPTION_PREFIXES = ("--", "\u2014", "\u2013")  # "--", em dash, en dash (phone autocorrect)
_QUOTES = "\"'\u201c\u201d\u2018\u2019\u00ab\u00bb\u300c\u300d"
_TOKEN = re.compile(r"\S+")
_COMMAND = re.compile(r"/(\S*)\s*(.*)", re.DOTALL)

# Option name → field of ImagineArgs. "negative" is accepted as a longer spelling of --no.
_OPTIONS = {
    "style": "style",
    "seed": "seed",
    "steps": "steps",
    "aspect": "aspect",
    "ar": "aspect",
    "cfg": "cfg",
    "no": "negative_prompt",
    "negative": "negative_prompt",
    "n": "n",
    "strength": "strength",
    "enhance": "enhance",
}
OPTION_NAMES = tuple(_OPTIONS)  # every spelling a user may type (the README lists them)
_MULTI_WORD = frozenset({"negative_prompt"})  # takes every word up to the next option
_FLAGS = frozenset({"enhance"})  # takes no value: given means on
_FIELDS = (
    "style",
    "seed",
    "steps",
    "aspect",
    "cfg",
    "negative_prompt",
    "n",
    "strength",
    "enhance",
)
# Past this length no parse can leave a prompt (and a negative prompt) inside their limits:
# the prompt is left as it is, to be refused as too long, without tokenising megabytes.
_PARSE_LIMIT = 4 * MAX_PROMPT_CHARS


def help_text(lang: Language | str = Language.EN) -> str:
    """The console's command list (in the catalogue as ``console.help``)."""
    return t(
        "console.help",
        lang,
        max_seed=MAX_SEED,
        min_steps=MIN_STEPS,
        max_steps=MAX_STEPS,
        aspects=", ".join(ASPECTS),
        max_images=MAX_IMAGES,
        min_strength=f"{MIN_STRENGTH:g}",
        max_strength=f"{MAX_STRENGTH:g}",
    )


@dataclass(frozen=True, slots=True)
class ImagineArgs:
    """A prompt's options parsed into types; ``None`` means "not typed" (core fills it).

    ``names`` maps each field given to the option name as typed (``ar`` or ``aspect``), so an
    error can quote the user.
    """

    prompt: str
    style: str | None = None
    seed: int | None = None
    steps: int | None = None
    aspect: str | None = None
    cfg: float | None = None
    negative_prompt: str | None = None
    n: int | None = None
    strength: float | None = None
    enhance: bool | None = None
    names: dict[str, str] = dataclasses.field(default_factory=dict, compare=False)


def merge_prompt_options(request: GenerateRequest) -> GenerateRequest:
    """``request`` with the options typed in its prompt taken out into its fields.

    The rule for a value given both ways (a platform's typed option and the same option in the
    prompt): the same value is fine; two different values are an error naming both, since
    guessing which one the user meant would make an image they did not ask for.
    """
    if len(request.prompt) > _PARSE_LIMIT:
        return request
    args = parse_imagine_args(request.prompt)
    changes: dict[str, object] = {"prompt": args.prompt}
    for name in _FIELDS:
        typed = getattr(args, name)
        if typed is None:
            continue
        given = getattr(request, name)
        if given is not None and not _same(given, typed):
            option = args.names[name]
            raise BadRequest(
                msg("core.option_conflict", option=option, given=_show(given), typed=_show(typed))
            )
        changes[name] = typed
    return replace(request, **changes)  # type: ignore[arg-type]


def _same(given: object, typed: object) -> bool:
    if isinstance(given, str) and isinstance(typed, str):
        return given.strip().casefold() == typed.strip().casefold()
    return given == typed


def _show(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else repr(value)


def split_command(line: str) -> tuple[str, str]:
    """``"/imagine@my_bot a cat"`` → ``("imagine", "a cat")``; plain text → ``("", text)``."""
    text = line.strip()
    match = _COMMAND.fullmatch(text)
    if match is None:
        return "", text
    name = match.group(1).split("@", 1)[0].lower()
    return name, match.group(2).strip()


def parse_imagine_args(text: str) -> ImagineArgs:
    """Parse the text after ``/imagine``. Raises :class:`BadRequest` with a message for the user."""
    values: dict[str, str] = {}
    names: dict[str, str] = {}
    prompt_runs: list[tuple[int, int]] = []
    tokens = list(_TOKEN.finditer(text))
    i = 0
    after_option = True
    while i < len(tokens):
        token = tokens[i].group()
        option = _option_name(token)
        if option is None:
            # Adjacent prompt words form one run: the prompt keeps its spacing and line breaks.
            if after_option:
                prompt_runs.append((tokens[i].start(), tokens[i].end()))
            else:
                prompt_runs[-1] = (prompt_runs[-1][0], tokens[i].end())
            after_option = False
            i += 1
            continue
        i = _take_option(option, token, tokens, i, values)
        names[_OPTIONS[option]] = option
        after_option = True
    prompt = " ".join(text[start:end] for start, end in prompt_runs)
    return replace(_build(prompt, values), names=names)


def _option_name(token: str) -> str | None:
    """The option a token starts (``--seed`` or ``--seed=5``), None for a prompt word."""
    for prefix in _OPTION_PREFIXES:
        if token.startswith(prefix):
            name = token[len(prefix) :].split("=", 1)[0].lower()
            # "--" alone, or "--5": not an option, just text (e.g. an ASCII arrow or a number).
            return name if name[:1].isalpha() else None
    return None


def _take_option(
    option: str, token: str, tokens: list[re.Match[str]], i: int, values: dict[str, str]
) -> int:
    """Store the option's value; return the index of the next unread token."""
    field = _OPTIONS.get(option)
    if field is None:
        known = ", ".join(f"--{name}" for name in _OPTIONS if name not in {"ar", "negative"})
        raise BadRequest(msg("core.unknown_option", option=option, known=known))
    if field in values:
        raise BadRequest(msg("core.option_twice", option=option))
    if field in _FLAGS:  # a flag never eats the next word: it belongs to the prompt
        values[field] = "on"
        return i + 1
    inline = token.split("=", 1)[1] if "=" in token else None
    words: list[str] = [] if not inline else [inline]
    j = i + 1
    if field in _MULTI_WORD:
        while j < len(tokens) and _option_name(tokens[j].group()) is None:
            words.append(tokens[j].group())
            j += 1
    elif inline is None and j < len(tokens) and _option_name(tokens[j].group()) is None:
        words.append(tokens[j].group())
        j += 1
    value = " ".join(words).strip(_QUOTES).strip()
    if not value:
        raise BadRequest(msg("core.option_needs_value", option=option, example=_example(field)))
    values[field] = value
    return j


def _build(prompt: str, values: dict[str, str]) -> ImagineArgs:
    return ImagineArgs(
        prompt=prompt.strip(),
        style=values.get("style"),
        seed=_int("seed", values.get("seed"), msg("core.want.int_range", low=0, high=MAX_SEED)),
        steps=_int(
            "steps", values.get("steps"), msg("core.want.int_range", low=MIN_STEPS, high=MAX_STEPS)
        ),
        aspect=values.get("aspect"),
        cfg=_float("cfg", values.get("cfg")),
        negative_prompt=values.get("negative_prompt"),
        n=_int("n", values.get("n"), msg("core.want.int_range", low=MIN_IMAGES, high=MAX_IMAGES)),
        strength=_strength(values.get("strength")),
        enhance=True if "enhance" in values else None,
    )


def _int(option: str, raw: str | None, wanted: Message) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw.replace(",", ""))
    except ValueError:
        raise BadRequest(
            msg("core.option_type", option=option, wanted=wanted, raw=repr(raw))
        ) from None


def _float(option: str, raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw.replace(",", "."))
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise BadRequest(msg("core.option_cfg", option=option, raw=repr(raw)))
    return value


def _strength(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw.replace(",", "."))
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        low, high = f"{MIN_STRENGTH:g}", f"{MAX_STRENGTH:g}"
        wanted = msg("core.want.number_range", low=low, high=high)
        raise BadRequest(msg("core.option_type", option="strength", wanted=wanted, raw=repr(raw)))
    return value


def _example(field: str) -> str:
    return {
        "style": "--style ink",
        "seed": "--seed 42",
        "steps": "--steps 4",
        "aspect": "--aspect 16:9",
        "cfg": "--cfg 4",
        "negative_prompt": "--no blurry, text",
        "n": "--n 4",
        "strength": "--strength 0.5",
    }[field]
