"""Configuration checks that run before anything heavy loads (the model takes minutes).

The operator sees every problem at once, one line each, and no traceback. The API, stable for
``turbobot run`` and ``turbobot doctor``:

* :func:`load_settings` — the settings from the environment and a ``.env`` file, with every
  value pydantic refuses turned into a :class:`Problem` (the settings come back with those
  values at their defaults, so the other checks still run).
* :func:`check_settings` — what the values point at: the model folder or Hugging Face cache
  entry, the Turbo LoRA, the webhook pair. Reads the disk only; no network.
* :func:`verify_tokens` — asks Discord (``GET /users/@me``) and Telegram (``getMe``) whether
  each configured token is accepted. Plain aiohttp, a short timeout, both at once. A platform
  that cannot be reached gives a non-fatal problem (``fatal=False``): not a configuration
  mistake, so ``turbobot run`` warns and starts (the platform library retries).
* :func:`preflight` — all three, in that order.

A :class:`Problem` never carries a secret: token values are neither printed nor logged, and an
HTTP error is reported by its type only (Telegram URLs contain the token).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from bot.config import ENV_FILE_VAR, Settings, find_env_file
from bot.slices import EngineSettings

DISCORD_API = "https://discord.com/api/v10"
TELEGRAM_API = "https://api.telegram.org/bot"
TOKEN_CHECK_TIMEOUT_S = 10.0
TURBO_DIR = "turbo"  # <lora dir>/turbo/ holds the Turbo LoRA (engine.styles uses the same name)
TURBO_HELP = "run `turbobot download --turbo` (see README, 'Download the model')"


@dataclass(frozen=True, slots=True)
class Problem:
    """One configuration mistake: the setting it concerns and a one-line message."""

    setting: str  # the variable's name, e.g. ``DISCORD_GUILD_IDS``
    message: str
    value: str | None = None  # the refused value as shown (never for a secret)
    # False for what may pass by itself (a platform that cannot be reached right now): the bot
    # starts anyway and a service manager's restart retries; a real mistake stops the start.
    fatal: bool = True

    def __str__(self) -> str:
        shown = "" if self.value is None else f"={self.value}"
        return f"{self.setting}{shown}: {self.message}"


@dataclass(frozen=True, slots=True)
class Preflight:
    """What :func:`preflight` found: the settings, the ``.env`` file read, and the problems."""

    settings: Settings
    env_file: Path | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No fatal problem: the bot may start (warnings aside)."""
        return not self.errors

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.fatal]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if not p.fatal]


# ---------------------------------------------------------------- settings


def load_settings(env_file: Path | None = None, **overrides: Any) -> tuple[Settings, list[Problem]]:
    """Settings from the environment and ``env_file``; refused values become problems.

    ``overrides`` (aliases such as ``TURBOBOT_DATA_DIR``) win over both, as in ``Settings``.
    """
    problems: list[Problem] = []
    if env_file is not None and not env_file.is_file():
        problems.append(Problem(ENV_FILE_VAR, f"{env_file} does not exist or is not a file"))
        env_file = None
    try:
        return Settings(_env_file=env_file, **overrides), problems  # type: ignore[call-arg]
    except ValidationError as exc:
        problems += [_problem_from(error) for error in exc.errors()]
        defaults = {p.setting: _default(p.setting) for p in problems if p.setting in _ALIASES}
        settings = Settings(_env_file=env_file, **{**overrides, **defaults})  # type: ignore[call-arg]
        return settings, problems


_ALIASES = {f.alias: name for name, f in Settings.model_fields.items() if f.alias}
_SECRET_FIELDS = {
    f.alias for f in Settings.model_fields.values() if f.alias and "SecretStr" in str(f.annotation)
}


def _default(alias: str) -> Any:
    return Settings.model_fields[_ALIASES[alias]].get_default(call_default_factory=True)


def _problem_from(error: Any) -> Problem:
    setting = str(error["loc"][0]) if error.get("loc") else "settings"
    message = str(error["msg"]).removeprefix("Value error, ")
    if setting in _SECRET_FIELDS or setting not in _ALIASES:
        return Problem(setting, message)
    return Problem(setting, message, _one_line(error.get("input")))


def _one_line(value: Any) -> str:
    text = "" if value is None else str(value)
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------- what the values point at


def check_settings(settings: Settings) -> list[Problem]:
    """Files and combinations, without loading anything: model, Turbo LoRA, webhook pair."""
    problems = [*_check_model(settings), *_check_turbo(settings), *_check_webhook(settings)]
    if settings.lora_dir is not None and not settings.lora_dir.is_dir():
        problems.append(Problem("TURBOBOT_LORA_DIR", f"{settings.lora_dir} is not a folder"))
    return problems


def _check_model(settings: Settings) -> list[Problem]:
    if settings.is_tiny or settings.is_synthetic:
        return []
    source = settings.model.strip()
    path = Path(source).expanduser()
    if path.is_dir():
        if (path / "model_index.json").is_file():
            return []
        return [
            Problem("TURBOBOT_MODEL", f"{path} has no model_index.json: not a diffusers folder")
        ]
    if _looks_like_repo_id(source) and _in_hf_cache(source):
        return []
    from huggingface_hub import constants

    return [
        Problem(
            "TURBOBOT_MODEL",
            f"{source!r} is neither a folder nor in the Hugging Face cache "
            f"({constants.HF_HUB_CACHE}); "
            "run `turbobot download` or point it at a Qwen-Image-2512 diffusers folder",
        )
    ]


def _looks_like_repo_id(source: str) -> bool:
    parts = source.split("/")
    return len(parts) == 2 and all(parts) and not source.startswith((".", "~"))


def _in_hf_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "model_index.json")
    return isinstance(found, str)


def turbo_candidates(settings: Settings | EngineSettings) -> list[Path]:
    """The ``.safetensors`` files in ``<lora dir>/turbo/``, sorted."""
    return sorted((settings.resolved_lora_dir / TURBO_DIR).glob("*.safetensors"))


def resolve_turbo(settings: Settings | EngineSettings) -> tuple[Path | None, Problem | None]:
    """The Turbo LoRA file to load (None in base mode), or the problem that prevents it.

    The tiny and synthetic models build their own Turbo LoRA at start: a missing one is fine.
    """
    if settings.base_mode:
        return None, None
    if settings.turbo_lora.strip():
        return _explicit_turbo(Path(settings.turbo_lora.strip()).expanduser())
    found = turbo_candidates(settings)
    folder = settings.resolved_lora_dir / TURBO_DIR
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        return None, Problem(
            "TURBOBOT_TURBO_LORA",
            f"{folder} holds several LoRAs ({names}); keep one there or set TURBOBOT_TURBO_LORA",
        )
    if found or settings.is_tiny or settings.is_synthetic:
        return (found[0] if found else None), None
    return None, Problem(
        "TURBOBOT_TURBO_LORA",
        f"no Turbo LoRA in {folder}/; {TURBO_HELP}, or set TURBOBOT_TURBO_LORA=none "
        "to run the base model at 30-50 steps",
    )


def _explicit_turbo(path: Path) -> tuple[Path | None, Problem | None]:
    if path.suffix != ".safetensors":
        return None, Problem("TURBOBOT_TURBO_LORA", f"{path} is not a .safetensors file")
    if not path.is_file():
        return None, Problem("TURBOBOT_TURBO_LORA", f"{path} does not exist; {TURBO_HELP}")
    return path, None


def _check_turbo(settings: Settings) -> list[Problem]:
    _, problem = resolve_turbo(settings)
    return [problem] if problem else []


def _check_webhook(settings: Settings) -> list[Problem]:
    if not (settings.telegram_webhook_url or "").strip():
        return []
    if settings.telegram_token is None:
        return [Problem("TELEGRAM_WEBHOOK_URL", "is set but TELEGRAM_TOKEN is not")]
    if settings.telegram_webhook_secret is None:
        return [
            Problem(
                "TELEGRAM_WEBHOOK_SECRET",
                "required with TELEGRAM_WEBHOOK_URL (e.g. `openssl rand -hex 32`)",
            )
        ]
    return []


# ---------------------------------------------------------------- tokens


async def verify_tokens(
    settings: Settings,
    *,
    timeout_s: float = TOKEN_CHECK_TIMEOUT_S,
    discord_api: str | None = None,
    telegram_api: str | None = None,
) -> list[Problem]:
    """Ask each platform whether its configured token is accepted; both checks run at once.

    The base URLs default to ``DISCORD_API_BASE_URL`` / ``TELEGRAM_API_BASE_URL`` and then the
    public APIs; pass them to point at a fake.
    """
    import aiohttp

    checks = []
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        if settings.discord_token is not None:
            base = discord_api or settings.discord_api_base_url or DISCORD_API
            checks.append(_check_discord(session, base, settings.discord_token))
        if settings.telegram_token is not None:
            base = telegram_api or settings.telegram_api_base_url or TELEGRAM_API
            checks.append(_check_telegram(session, base, settings.telegram_token))
        found = await asyncio.gather(*checks)
    return [problem for problem in found if problem is not None]


async def _check_discord(session: Any, base: str, token: SecretStr) -> Problem | None:
    url = f"{base.rstrip('/')}/users/@me"
    headers = {"Authorization": f"Bot {token.get_secret_value()}"}
    status = await _get_status(session, url, headers)
    if isinstance(status, str) or status >= 500:
        why = status if isinstance(status, str) else f"HTTP {status}"
        return Problem("DISCORD_TOKEN", f"could not reach {base} to check it ({why})", fatal=False)
    if status == 200:
        return None
    if status == 401:
        return Problem(
            "DISCORD_TOKEN",
            "Discord rejected the token (401); copy a new one from the Developer Portal > Bot",
        )
    return Problem("DISCORD_TOKEN", f"Discord answered {status} to the token check")


async def _check_telegram(session: Any, base: str, token: SecretStr) -> Problem | None:
    root = base.rstrip("/")
    root = root if root.endswith("/bot") else f"{root.removesuffix('/bot')}/bot"
    status = await _get_status(session, f"{root}{token.get_secret_value()}/getMe", {})
    shown = root.removesuffix("/bot")
    if isinstance(status, str) or status >= 500:
        why = status if isinstance(status, str) else f"HTTP {status}"
        message = f"could not reach {shown} to check it ({why})"
        return Problem("TELEGRAM_TOKEN", message, fatal=False)
    if status == 200:
        return None
    if status in (401, 404):  # 404: not even shaped like a token
        return Problem(
            "TELEGRAM_TOKEN",
            f"Telegram rejected the token ({status}); ask @BotFather for it again (/token)",
        )
    return Problem("TELEGRAM_TOKEN", f"Telegram answered {status} to the token check")


async def _get_status(session: Any, url: str, headers: dict[str, str]) -> int | str:
    """The HTTP status, or the error's type name (never its text: it may hold the URL)."""
    import aiohttp

    try:
        async with session.get(url, headers=headers) as response:
            return int(response.status)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return type(exc).__name__


# ---------------------------------------------------------------- all of it


async def preflight(
    environ: Mapping[str, str] | None = None, *, verify: bool = True, **overrides: Any
) -> Preflight:
    """Find the ``.env`` file, load and check the settings, then verify the tokens."""
    env_file = find_env_file(environ)
    settings, problems = load_settings(env_file, **overrides)
    problems += check_settings(settings)
    if verify:
        problems += await verify_tokens(settings)
    return Preflight(settings, env_file if env_file and env_file.is_file() else None, problems)
