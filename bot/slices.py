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

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from bot.config import MemoryProfile, Settings
from bot.domain import BASE_STEPS, TURBO_STEPS, Platform, SafetyMode, StepRange


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
        health=HealthSettings(
            settings.metrics_host, settings.metrics_port, settings.log_level, settings.log_format
        ),
        pool=pool_settings(settings),
        discord=discord_settings(settings),
        telegram=telegram_settings(settings),
        console=ConsoleSettings(settings.describe_dir) if settings.wants_console else None,
        secrets=secret_values(settings),
    )


def core_settings(settings: Settings) -> CoreSettings:
    return CoreSettings(
        data_dir=settings.data_dir,
        rate_per_minute=settings.rate_per_minute,
        rate_burst=settings.rate_burst,
        max_pending_per_user=settings.max_pending_per_user,
        max_pending_per_server=settings.max_pending_per_server,
        max_queue=settings.max_queue,
        max_attempts=settings.max_attempts,
        max_images=settings.max_images,
        step_range=settings.step_range,
        operator_banned_words=settings.operator_banned_words,
        operators=settings.operators,
        safety_check=settings.safety_check,
        safety_policy=settings.safety_policy,
        safety_time_limit_s=settings.safety_time_limit_s,
    )


def engine_settings(settings: Settings) -> EngineSettings:
    return EngineSettings(
        model=settings.model,
        data_dir=settings.data_dir,
        turbo_lora=settings.turbo_lora,
        lora_dir=settings.lora_dir,
        synthetic_layers=settings.synthetic_layers,
        max_resident_styles=settings.max_resident_styles,
        memory_profile=settings.memory_profile,
        compile=settings.compile,
        jpeg_quality=settings.jpeg_quality,
        device=settings.device,
        tiny_side=settings.tiny_side,
        vlm=settings.vlm,
    )


def pool_settings(settings: Settings) -> PoolSettings | None:
    if settings.redis_url is None:
        return None
    return PoolSettings(
        redis_url=settings.redis_url,
        data_dir=settings.data_dir,
        worker_heartbeat_s=settings.worker_heartbeat_s,
        worker_job_timeout_s=settings.worker_job_timeout_s,
        worker_poll_s=settings.worker_poll_s,
        worker_max_failures=settings.worker_max_failures,
        worker_rest_s=settings.worker_rest_s,
    )


def discord_settings(settings: Settings) -> DiscordSettings | None:
    if settings.discord_token is None:
        return None
    return DiscordSettings(
        discord_token=settings.discord_token,
        discord_api_base_url=settings.discord_api_base_url,
        discord_gateway_url=settings.discord_gateway_url,
        guild_ids=tuple(settings.guild_ids),
    )


def telegram_settings(settings: Settings) -> TelegramSettings | None:
    if settings.telegram_token is None:
        return None
    return TelegramSettings(
        telegram_token=settings.telegram_token,
        telegram_api_base_url=settings.telegram_api_base_url,
        telegram_webhook_url=settings.telegram_webhook_url,
        telegram_webhook_secret=settings.telegram_webhook_secret,
        telegram_webhook_listen=settings.telegram_webhook_listen,
        telegram_webhook_port=settings.telegram_webhook_port,
    )


def secret_values(settings: Settings) -> tuple[str, ...]:
    """Every secret's plain value, for the log filter that redacts them."""
    held = (
        settings.discord_token,
        settings.telegram_token,
        settings.telegram_webhook_secret,
        settings.redis_url,
    )
    return tuple(s.get_secret_value() for s in held if s is not None)
