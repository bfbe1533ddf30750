"""All settings, from the environment and ``.env``, in one place.

Every setting is listed with a comment in ``.env.example``. Tokens are ``SecretStr``: they
print as ``**********`` in reprs and logs, and nothing in the bot stores them. An empty value
(``DISCORD_TOKEN=``) counts as unset. Which ``.env`` file is read is decided by
:func:`find_env_file`; :mod:`bot.preflight` turns every bad value into one line for the operator.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.domain import MAX_IMAGES, Platform, SafetyMode, StepRange

if TYPE_CHECKING:
    from bot.slices import EngineSettings

MemoryProfile = Literal["auto", "full", "balanced", "low", "cpu"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        # `DISCORD_TOKEN=` in a .env copied from the example means "not set", not "empty token".
        env_ignore_empty=True,
    )

    # --- chat platforms (a token enables the adapter) ---
    discord_token: SecretStr | None = Field(default=None, alias="DISCORD_TOKEN")
    discord_api_base_url: str | None = Field(default=None, alias="DISCORD_API_BASE_URL")
    discord_gateway_url: str | None = Field(default=None, alias="DISCORD_GATEWAY_URL")
    discord_guild_ids: str = Field(default="", alias="DISCORD_GUILD_IDS")
    # Who may run operator commands (``/styles rescan``): "discord:123,telegram:456"; empty: nobody.
    operator_ids: str = Field(default="", alias="TURBOBOT_OPERATOR_IDS")
    telegram_token: SecretStr | None = Field(default=None, alias="TELEGRAM_TOKEN")
    telegram_api_base_url: str | None = Field(default=None, alias="TELEGRAM_API_BASE_URL")
    telegram_webhook_url: str | None = Field(default=None, alias="TELEGRAM_WEBHOOK_URL")
    telegram_webhook_secret: SecretStr | None = Field(default=None, alias="TELEGRAM_WEBHOOK_SECRET")
    # Webhook mode listens here for the reverse proxy that terminates TLS for the public URL.
    telegram_webhook_listen: str = Field(default="127.0.0.1", alias="TELEGRAM_WEBHOOK_LISTEN")
    telegram_webhook_port: int = Field(default=8443, ge=1, le=65535, alias="TELEGRAM_WEBHOOK_PORT")
    console: bool | None = Field(default=None, alias="TURBOBOT_CONSOLE")

    # --- model and styles ---
    model: str = Field(default="tiny", alias="TURBOBOT_MODEL")
    # TURBOBOT_MODEL=synthetic: real-size model with random weights; this many transformer blocks
    # (the real 60; fewer lets a CPU test materialise the real widths).
    synthetic_layers: int = Field(default=60, ge=1, le=60, alias="TURBOBOT_SYNTHETIC_LAYERS")
    # A .safetensors path; empty = <lora dir>/turbo/*.safetensors; "none" = base mode (no Turbo).
    turbo_lora: str = Field(default="", alias="TURBOBOT_TURBO_LORA")
    lora_dir: Path | None = Field(default=None, alias="TURBOBOT_LORA_DIR")
    max_resident_styles: int = Field(default=4, ge=1, le=64, alias="TURBOBOT_MAX_RESIDENT_STYLES")
    memory_profile: MemoryProfile = Field(default="auto", alias="TURBOBOT_MEMORY_PROFILE")
    compile: bool = Field(default=False, alias="TURBOBOT_COMPILE")
    jpeg_quality: int = Field(default=95, ge=50, le=100, alias="TURBOBOT_JPEG_QUALITY")
    device: str = Field(default="auto", alias="TURBOBOT_DEVICE")
    # The tiny offline model draws noise; at 1024^2 it still costs ~2 s a step on 2 cores, so it
    # renders at this side length instead (the real model always renders the chosen aspect).
    tiny_side: int = Field(default=256, ge=64, le=1360, alias="TURBOBOT_TINY_SIDE")
    # The text encoder's LM head and vision tower (describe, enhance, safety check). Off: the
    # offloaded profiles drop the LM head and never stream the vision tower (less memory).
    vlm: bool = Field(default=True, alias="TURBOBOT_VLM")
    # The console's /describe PATH reads pictures only from inside this folder (unset: off).
    describe_dir: Path | None = Field(default=None, alias="TURBOBOT_DESCRIBE_DIR")

    # --- storage ---
    data_dir: Path = Field(default=Path("data"), alias="TURBOBOT_DATA_DIR")

    # --- admission and queue ---
    rate_per_minute: float = Field(default=6.0, gt=0, alias="TURBOBOT_RATE_PER_MINUTE")
    rate_burst: int = Field(default=3, ge=1, alias="TURBOBOT_RATE_BURST")
    max_pending_per_user: int = Field(default=5, ge=1, alias="TURBOBOT_MAX_PENDING_PER_USER")
    max_pending_per_server: int = Field(default=50, ge=1, alias="TURBOBOT_MAX_PENDING_PER_SERVER")
    max_queue: int = Field(default=500, ge=1, alias="TURBOBOT_MAX_QUEUE")
    max_attempts: int = Field(default=3, ge=1, le=10, alias="TURBOBOT_MAX_ATTEMPTS")
    # Images one prompt may ask for (``--n``); each image counts against the limits.
    max_images: int = Field(default=MAX_IMAGES, ge=1, le=MAX_IMAGES, alias="TURBOBOT_MAX_IMAGES")

    # --- moderation (issue 6) ---
    # Operator word list, comma-separated; every server's own banned words are added to it.
    banned_words: str = Field(default="", alias="TURBOBOT_BANNED_WORDS")
    # The image safety check (issue 14): what a flagged image gets where a server chose nothing.
    safety_check: SafetyMode = Field(default=SafetyMode.OFF, alias="TURBOBOT_SAFETY_CHECK")
    # The policy the VLM checks each image against (empty: bot.safety.DEFAULT_POLICY).
    safety_policy: str = Field(default="", max_length=1000, alias="TURBOBOT_SAFETY_POLICY")
    safety_time_limit_s: float = Field(
        default=30.0, gt=0, le=300, alias="TURBOBOT_SAFETY_TIME_LIMIT_S"
    )

    # --- observability ---
    metrics_port: int = Field(default=9464, ge=0, le=65535, alias="TURBOBOT_METRICS_PORT")
    metrics_host: str = Field(default="127.0.0.1", alias="TURBOBOT_METRICS_HOST")
    log_level: str = Field(default="INFO", alias="TURBOBOT_LOG_LEVEL")
    log_format: Literal["text", "json"] = Field(default="text", alias="TURBOBOT_LOG_FORMAT")

    # --- scale-out (issue 7): REDIS_URL switches the bot to a pool of GPU workers ---
    # A SecretStr: the URL usually carries the Redis password, which must never reach a log.
    redis_url: SecretStr | None = Field(default=None, alias="REDIS_URL")
    # Workers advertise themselves this often; one missing for 3 beats counts as dead and its
    # job is handed to another worker.
    worker_heartbeat_s: float = Field(default=2.0, gt=0, le=60, alias="TURBOBOT_WORKER_HEARTBEAT_S")
    # arq's job_timeout on the worker: a generation running longer is cancelled and retried.
    worker_job_timeout_s: float = Field(
        default=180.0, gt=0, le=3600, alias="TURBOBOT_WORKER_JOB_TIMEOUT_S"
    )
    # How often an idle worker looks at the queue (arq's poll_delay): a job waits half of it on
    # average before a worker takes it. 50 cheap Redis reads a second per idle worker.
    worker_poll_s: float = Field(default=0.02, gt=0, le=5, alias="TURBOBOT_WORKER_POLL_S")
    # A worker whose jobs fail this many times in a row rests (takes no jobs) for a while.
    worker_max_failures: int = Field(default=3, ge=1, le=100, alias="TURBOBOT_WORKER_MAX_FAILURES")
    worker_rest_s: float = Field(default=300.0, ge=0, alias="TURBOBOT_WORKER_REST_S")

    @field_validator("log_level")
    @classmethod
    def _upper(cls, v: str) -> str:
        level = v.upper()
        if level not in _LOG_LEVELS:
            raise ValueError(f"use one of {', '.join(_LOG_LEVELS)}")
        return level

    @field_validator("discord_guild_ids")
    @classmethod
    def _ids(cls, v: str) -> str:
        for part in _split(v):
            if not part.isdigit():
                raise ValueError(
                    f"{part!r} is not a server id: use the numeric ids (Discord > Developer "
                    "Mode > right-click the server > Copy Server ID), comma-separated"
                )
        return v

    @field_validator("operator_ids")
    @classmethod
    def _operator_ids(cls, v: str) -> str:
        for part in _split(v):
            platform, _, user_id = part.partition(":")
            if platform.strip().lower() not in _OPERATOR_PLATFORMS or not user_id.strip().isdigit():
                raise ValueError(
                    f"{part!r} is not an operator: write platform:user-id pairs such as "
                    "discord:123456789012345678,telegram:123456789, comma-separated"
                )
        return v

    def engine(self) -> EngineSettings:
        """The engine's slice (:mod:`bot.slices`); the model rules below are its own."""
        from bot.slices import engine_settings  # bot.slices builds on this module

        return engine_settings(self)

    @property
    def is_tiny(self) -> bool:
        return self.engine().is_tiny

    @property
    def is_synthetic(self) -> bool:
        return self.engine().is_synthetic

    @property
    def base_mode(self) -> bool:
        """``TURBOBOT_TURBO_LORA=none``: the base model alone, with its own steps and scheduler."""
        return self.engine().base_mode

    @property
    def step_range(self) -> StepRange:
        return self.engine().step_range

    @property
    def resolved_lora_dir(self) -> Path:
        """Real models read ./loras; the tiny and synthetic models get LoRAs they build."""
        return self.engine().resolved_lora_dir

    @property
    def operator_banned_words(self) -> tuple[str, ...]:
        return tuple(w.strip() for w in self.banned_words.split(",") if w.strip())

    @property
    def guild_ids(self) -> list[int]:
        return [int(x) for x in _split(self.discord_guild_ids)]

    @property
    def operators(self) -> frozenset[tuple[Platform, str]]:
        """(platform, user id) of each operator, from ``TURBOBOT_OPERATOR_IDS``."""
        pairs = (part.partition(":") for part in _split(self.operator_ids))
        return frozenset((Platform(p.strip().lower()), u.strip()) for p, _, u in pairs)

    @property
    def wants_console(self) -> bool:
        """The console chat runs when asked, or when no platform token is set."""
        if self.console is not None:
            return self.console
        return self.discord_token is None and self.telegram_token is None


_OPERATOR_PLATFORMS = (Platform.DISCORD.value, Platform.TELEGRAM.value)
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _split(csv: str) -> list[str]:
    return [part.strip() for part in csv.split(",") if part.strip()]


ENV_FILE_VAR = "TURBOBOT_ENV_FILE"


def env_file_candidates(environ: Mapping[str, str] | None = None) -> list[Path]:
    """Where the ``.env`` file may be, in order: ``TURBOBOT_ENV_FILE``, ./.env, <data dir>/.env.

    The data dir here is ``TURBOBOT_DATA_DIR`` from the environment (the file cannot name the
    folder it lives in), else the default ./data.
    """
    env = os.environ if environ is None else environ
    explicit = env.get(ENV_FILE_VAR, "").strip()
    if explicit:
        return [Path(explicit).expanduser()]
    data_dir = Path(env.get("TURBOBOT_DATA_DIR", "").strip() or "data").expanduser()
    return [Path(".env"), data_dir / ".env"]


def find_env_file(environ: Mapping[str, str] | None = None) -> Path | None:
    """The first candidate that exists (an explicit ``TURBOBOT_ENV_FILE`` is returned as is,
    so a typo in it is reported rather than silently ignored)."""
    candidates = env_file_candidates(environ)
    env = os.environ if environ is None else environ
    if env.get(ENV_FILE_VAR, "").strip():
        return candidates[0]
    return next((path for path in candidates if path.is_file()), None)
