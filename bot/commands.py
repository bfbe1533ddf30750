"""The text-command grammar shared by the console and Telegram (Discord has typed options).

``/imagine a cat on a roof --style ink --seed 42`` → :class:`ImagineArgs`. Options may appear
anywhere; everything else is the prompt, kept as typed (quotes, emoji, line breaks). There is
no shell quoting on purpose: chat users type apostrophes and smart quotes, and ``shlex`` would
reject half of them. Phones turn ``--`` into an em or en dash, so those start options too.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from bot.domain import (
    ASPECTS,
    MAX_SEED,
    MAX_STEPS,
    MIN_STEPS,
    GenerateRequest,
    Language,
    Requester,
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
}
_MULTI_WORD = frozenset({"negative_prompt"})  # takes every word up to the next option


def help_text(lang: Language | str = Language.EN) -> str:
    """The console's command list (in the catalogue as ``console.help``)."""
    return t(
        "console.help",
        lang,
        max_seed=MAX_SEED,
        min_steps=MIN_STEPS,
        max_steps=MAX_STEPS,
        aspects=", ".join(ASPECTS),
    )


@dataclass(frozen=True, slots=True)
class ImagineArgs:
    """An ``/imagine`` command parsed into types; ``None`` means "not given" (core fills it)."""

    prompt: str
    style: str | None = None
    seed: int | None = None
    steps: int | None = None
    aspect: str | None = None
    cfg: float | None = None
    negative_prompt: str | None = None

    def to_request(self, requester: Requester, parent_job_id: int | None = None) -> GenerateRequest:
        return GenerateRequest(
            requester=requester,
            prompt=self.prompt,
            style=self.style,
            seed=self.seed,
            steps=self.steps,
            aspect=self.aspect,
            cfg=self.cfg,
            negative_prompt=self.negative_prompt,
            parent_job_id=parent_job_id,
        )


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
        after_option = True
    prompt = " ".join(text[start:end] for start, end in prompt_runs)
    return _build(prompt, values)


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


def _example(field: str) -> str:
    return {
        "style": "--style ink",
        "seed": "--seed 42",
        "steps": "--steps 4",
        "aspect": "--aspect 16:9",
        "cfg": "--cfg 4",
        "negative_prompt": "--no blurry, text",
    }[field]
