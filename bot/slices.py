"""Per-component settings: each part of the bot gets the slice of :class:`~bot.config.Settings`
it needs, and no more.

The composition root (:mod:`bot.entry.run`, :mod:`bot.entry.worker`) reads one ``Settings`` and
calls :func:`split`; from there on the core sees its limits, the engine its model, each chat
adapter its own token, the metrics server its address. A token reaches only its adapter, so a
mistake in the core, the store, the engine or the other adapter cannot log or store it
(``tests/core/test_slices.py`` walks the built objects looking for one).

Field names are those of ``Settings``: a slice reads like the line in ``.env.example`` it
comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import SecretStr

from bot.config import MemoryProfile, Settings
from bot.domain import BASE_STEPS, TURBO_STEPS, Platform, SafetyMode, StepRange

SliceT = TypeVar("SliceT")


@dataclass(frozen=True, slots=True)
class CoreSettings:
    """The core's rules: admission limits, retries, images per prompt, step range, operator
    word list and operators; ``data_dir`` holds the database and the image files."""

    data_dir: Path
    rate_per_minute: float
    rate_burst: int
    max_pending_per_user: int
    max_pending_per_server: int
    max_queue: int
    max_attempts: int
    max_images: int
    step_range: StepRange
    operator_banned_words: tuple[str, ...] = ()
    operators: frozenset[tuple[Platform, str]] = frozenset()
    safety_check: SafetyMode = SafetyMode.OFF  # the operator's default (servers may override)
    safety_policy: str = ""
    safety_time_limit_s: float = 30.0


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """What the local engine loads and how (model, LoRAs, memory profile, compile, VLM)."""

    model: str
    data_dir: Path
    turbo_lora: str = ""
    lora_dir: Path | None = None
    synthetic_layers: int = 60
    max_resident_styles: int = 4
    memory_profile: MemoryProfile = "auto"
    compile: bool = False
    jpeg_quality: int = 95
    device: str = "auto"
    tiny_side: int = 256
    vlm: bool = True

    @property
    def is_tiny(self) -> bool:
        return self.model.strip().lower() == "tiny"

    @property
    def is_synthetic(self) -> bool:
        return self.model.strip().lower() == "synthetic"

    @property
    def base_mode(self) -> bool:
        return self.turbo_lora.strip().lower() == "none"

    @property
    def step_range(self) -> StepRange:
        return BASE_STEPS if self.base_mode else TURBO_STEPS

    @property
    def resolved_lora_dir(self) -> Path:
        """Real models read ./loras; the tiny and synthetic models get LoRAs they build."""
        if self.lora_dir is not None:
            return self.lora_dir
        if self.is_tiny:
            return self.data_dir / "tiny" / "loras"
        return self.data_dir / "synthetic" / "loras" if self.is_synthetic else Path("loras")


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """The worker pool (issue 7), both sides: the Redis URL (it carries the password) and the
    timings; ``data_dir`` is where the bot reads input images to send and a worker writes them."""

    redis_url: SecretStr
    data_dir: Path
    worker_heartbeat_s: float = 2.0
    worker_job_timeout_s: float = 180.0
    worker_poll_s: float = 0.02
    worker_max_failures: int = 3
    worker_rest_s: float = 300.0


@dataclass(frozen=True, slots=True)
class DiscordSettings:
    """The Discord adapter's token, endpoints (tests point them at the fake) and guilds."""

    discord_token: SecretStr
    discord_api_base_url: str | None = None
    discord_gateway_url: str | None = None
    guild_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class TelegramSettings:
    """The Telegram adapter's token, endpoint and webhook mode."""

    telegram_token: SecretStr
    telegram_api_base_url: str | None = None
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_webhook_listen: str = "127.0.0.1"
    telegram_webhook_port: int = 8443


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """The terminal chat: the one folder its ``/describe PATH`` may read pictures from."""

    describe_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class HealthSettings:
    """Where ``/healthz``, ``/readyz`` and ``/metrics`` listen, and how logs are written."""

    metrics_host: str
    metrics_port: int
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"


@dataclass(frozen=True, slots=True)
class Slices:
    """Every slice; ``None`` for a component its settings leave off (no token, no Redis)."""

    core: CoreSettings
    engine: EngineSettings
    health: HealthSettings
    pool: PoolSettings | None
    discord: DiscordSettings | None
    telegram: TelegramSettings | None
    console: ConsoleSettings | None
    secrets: tuple[str, ...]


def split(settings: Settings) -> Slices:
    """Cut ``settings`` into the slices; called once, by the composition root."""
    return Slices(
        core=core_settings(settings),
        engine=engine_settings(settings),
        health=_cut(HealthSettings, settings),
        pool=pool_settings(settings),
        discord=discord_settings(settings),
        telegram=telegram_settings(settings),
        console=_cut(ConsoleSettings, settings) if settings.wants_console else None,
        secrets=secret_values(settings),
    )


def _cut(kind: type[SliceT], settings: Settings, **given: Any) -> SliceT:
    """``kind`` with each field read from the ``Settings`` attribute of the same name (``given``
    overrides one), so a field added to a slice is filled without a second list to update."""
    values = {f.name: getattr(settings, f.name) for f in fields(kind)}  # type: ignore[arg-type]
    return kind(**(values | given))


def core_settings(settings: Settings) -> CoreSettings:
    return _cut(CoreSettings, settings)


def engine_settings(settings: Settings) -> EngineSettings:
    return _cut(EngineSettings, settings)


def pool_settings(settings: Settings) -> PoolSettings | None:
    return None if settings.redis_url is None else _cut(PoolSettings, settings)


def discord_settings(settings: Settings) -> DiscordSettings | None:
    if settings.discord_token is None:
        return None
    return _cut(DiscordSettings, settings, guild_ids=tuple(settings.guild_ids))


def telegram_settings(settings: Settings) -> TelegramSettings | None:
    return None if settings.telegram_token is None else _cut(TelegramSettings, settings)


def secret_values(settings: Settings) -> tuple[str, ...]:
    """Every secret's plain value, for the log filter that redacts them."""
    held = (
        settings.discord_token,
        settings.telegram_token,
        settings.telegram_webhook_secret,
        settings.redis_url,
    )
    return tuple(s.get_secret_value() for s in held if s is not None)
