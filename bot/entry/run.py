"""The composition root: ``turbobot run``. The one place that imports every layer.

Opens, in order: the executor (engine), the store and core, the metrics server, and the chat
adapters whose tokens are set (the console when none is). Runs until SIGINT/SIGTERM or, for a
piped console, the end of input. Shutdown: adapters stop intake → the core lets the job in
flight finish and delivers it → adapters disconnect → core closes the database → the executor
closes. Queued jobs stay in the database for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.config import ENV_FILE_VAR, Settings, env_file_candidates
from bot.errors import TurbobotError
from bot.health import Status, notify_systemd
from bot.lifecycle import install_reload_signal, install_stop_signals, setup_logging
from bot.metrics import Metrics, serve_metrics
from bot.ports import ChatAdapter, Executor
from bot.preflight import preflight
from bot.service import Core, open_core, rescan_styles
from bot.slices import EngineSettings, PoolSettings, Slices, secret_values, split

log = logging.getLogger("turbobot")

TINY_BANNER = (
    "TINY OFFLINE MODEL: images are noise; set TURBOBOT_MODEL=... for real images "
    "(a local diffusers folder of Qwen-Image-2512, see README)."
)


def run() -> int:
    """Entry point of ``turbobot run``; returns the process exit code.

    The configuration is checked first, tokens included, so a mistake costs seconds, not a
    model load: every problem is printed on one line each and the exit code is 2.
    """
    checked = asyncio.run(preflight())
    if not checked.ok:
        for problem in checked.errors:
            print(f"turbobot: {problem}", file=sys.stderr)  # logging is not set up yet
        return 2
    settings = checked.settings
    setup_logging(settings.log_level, settings.log_format, list(secret_values(settings)))
    log_configuration(checked.settings, checked.env_file)
    for problem in checked.warnings:
        log.warning("%s", problem)
    try:
        return asyncio.run(serve(settings))
    except KeyboardInterrupt:  # a second Ctrl-C: the user wants out now
        return 130
    except TurbobotError as exc:  # the engine's own one-line reasons (a model that won't load)
        log.error("cannot start: %s", exc)  # noqa: TRY400 - the message says it all
        return 2
    except Exception:
        # One place for the unexpected (a bad token, a model that will not load): logged with
        # context through the redacting handler, and a non-zero exit for the service manager.
        log.exception("turbobot stopped because of an error")
        return 1


def log_configuration(settings: Settings, env_file: Path | None) -> None:
    """Say where the configuration came from and which platforms it enables."""
    if env_file is not None:
        log.info("configuration: %s (and the environment)", env_file.resolve())
    else:
        looked = " or ".join(str(p) for p in env_file_candidates())
        log.info("configuration: the environment only (no %s found)", looked)
    platforms = [
        name
        for name, token in (
            ("discord", settings.discord_token),
            ("telegram", settings.telegram_token),
        )
        if token is not None
    ]
    if not platforms:
        log.warning(
            "no DISCORD_TOKEN or TELEGRAM_TOKEN found: only the console chat can run "
            "(set them in the environment, %s=..., ./.env or <data dir>/.env)",
            ENV_FILE_VAR,
        )
    log.info(
        "platforms: %s",
        ", ".join(platforms + (["console"] if settings.wants_console else [])) or "none",
    )


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> int:
    """Run the bot until ``stop`` is set (signals set it); returns the exit code.

    ``settings`` is cut into per-component slices here (:func:`bot.slices.split`): from this
    point on each part holds only its own, a token only its adapter.
    """
    return await serve_slices(split(settings), stop)


async def serve_slices(settings: Slices, stop: asyncio.Event | None = None) -> int:
    """:func:`serve` after the split."""
    stop = stop or asyncio.Event()
    install_stop_signals(stop)
    if settings.engine.is_tiny:
        log.warning(TINY_BANNER)
    metrics = Metrics()
    status = Status(metrics)
    async with contextlib.AsyncExitStack() as stack:
        # Up before the model loads: /readyz says "starting" meanwhile.
        await stack.enter_async_context(
            serve_metrics(
                metrics,
                settings.health.metrics_host,
                settings.health.metrics_port,
                status.healthy,
                details=status.details,
                ready=lambda: status.ready,
                pool=status.pool,
            )
        )
        status.stage = "loading the model"
        executor, pool_stats = await _open_executor(stack, settings.engine, settings.pool)
        install_reload_signal(lambda: sighup_rescan(executor))
        core = await stack.enter_async_context(open_core(settings.core, executor, metrics=metrics))
        status.attach_engine(lambda: core.healthy, pool_stats)
        adapters = build_adapters(settings, core, stop.set)
        if not adapters:
            log.error("nothing to run: no platform token is set and TURBOBOT_CONSOLE=false")
            return 2
        status.attach_platforms(adapters)
        status.stage = "connecting"
        await _run_adapters(adapters, core, stop, status)
    log.info("stopped cleanly")
    return 0


async def sighup_rescan(executor: Executor) -> None:
    """SIGHUP: pick up added, changed or removed style folders; the model stays loaded.

    systemd's reload protocol: RELOADING=1 (with the monotonic time) first, READY=1 when done.
    """
    notify_systemd(f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")
    try:
        changes = await rescan_styles(executor)
    except Exception:
        log.exception("style rescan failed; the styles in use stay as they were")
    else:
        log.info("styles rescanned: %s", ", ".join(changes.styles) or "none")
    finally:
        notify_systemd("READY=1")


async def _open_executor(
    stack: contextlib.AsyncExitStack, engine: EngineSettings, pool: PoolSettings | None
) -> tuple[Executor, Callable[[], dict[str, Any]] | None]:
    """The embedded GPU executor, or the worker pool when ``REDIS_URL`` is set.

    Returns the executor and, for the pool, what ``/healthz`` shows about its workers.
    """
    if pool is None:
        from engine.executors import open_local_executor

        return await stack.enter_async_context(open_local_executor(engine)), None
    from engine.pool.remote import open_remote_executor

    log.info("REDIS_URL is set: jobs go to `turbobot worker` processes")
    remote = await stack.enter_async_context(open_remote_executor(pool))
    return remote, lambda: remote.stats().as_dict()


async def _run_adapters(
    adapters: list[ChatAdapter], core: Core, stop: asyncio.Event, status: Status
) -> None:
    try:
        async with asyncio.TaskGroup() as group:
            for adapter in adapters:
                core.register(adapter)
                group.create_task(adapter.start())
        status.stage = "running"
        notify_systemd("READY=1")
        log.info("running: %s", ", ".join(type(a).__name__ for a in adapters))
        await stop.wait()
    finally:
        status.stage = "stopping"
        notify_systemd("STOPPING=1")
        log.info("stopping: no new jobs; finishing the job in flight")
        for adapter in adapters:
            with contextlib.suppress(Exception):
                await adapter.stop_intake()
        await core.drain()
        for adapter in adapters:
            try:
                await adapter.aclose()
            except Exception:
                log.exception("closing %s failed", type(adapter).__name__)


def build_adapters(
    settings: Slices, core: Core, request_stop: Callable[[], None]
) -> list[ChatAdapter]:
    """Every adapter whose token is set; platform libraries are imported only when needed.

    Each adapter gets its own slice: the Discord token never reaches the Telegram adapter.
    """
    adapters: list[ChatAdapter] = []
    if settings.discord is not None:
        from adapters.discord import DiscordAdapter

        adapters.append(DiscordAdapter(core, settings.discord))
    if settings.telegram is not None:
        from adapters.telegram import TelegramAdapter

        adapters.append(TelegramAdapter(core, settings.telegram))
    if settings.console is not None:
        from adapters.console import ConsoleAdapter

        adapters.append(
            ConsoleAdapter(
                core,
                on_end_of_input=request_stop,
                wait_until_idle=core.wait_until_idle,
                describe_dir=settings.console.describe_dir,
            )
        )
    return adapters
