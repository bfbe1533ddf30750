"""A chat in the terminal, speaking the same commands as the platforms.

Lines come from stdin (a terminal or a pipe); answers, progress and the path of each JPEG go
to stdout. At the end of input it waits for its own jobs, then asks the process to stop. Like
every adapter it only translates: validation, limits and history live in the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TextIO

from bot.commands import help_text, split_command
from bot.domain import (
    MAX_INPUT_BYTES,
    Delivered,
    GenerateRequest,
    Job,
    Language,
    Platform,
    Requester,
)
from bot.errors import TurbobotError
from bot.i18n import Message, t
from bot.ports import CoreApi
from bot.texts import state_word, vlm_lines

_log = logging.getLogger(__name__)

CONSOLE_USER = Requester(
    platform=Platform.CONSOLE, user_id="local", display_name="you", channel_id="console"
)


class ConsoleAdapter:
    """:class:`bot.ports.ChatAdapter` for the terminal."""

    platform = Platform.CONSOLE
    connected = True  # the terminal has no connection to lose

    def __init__(
        self,
        core: CoreApi,
        *,
        on_end_of_input: Callable[[], None],
        wait_until_idle: Callable[[str], Awaitable[None]] | None = None,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        requester: Requester = CONSOLE_USER,
        describe_dir: Path | None = None,
    ) -> None:
        self._core = core
        # /describe PATH reads pictures only inside this folder (TURBOBOT_DESCRIBE_DIR).
        self._describe_dir = describe_dir
        self._on_end = on_end_of_input
        self._wait_idle = wait_until_idle
        self._stdin = stdin or sys.stdin
        self._stdout = stdout or sys.stdout
        self._me = requester
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._taking = True

    # --- ChatAdapter lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # A daemon thread, not the default executor: a blocking read of a terminal must not
        # keep the process alive at exit. It works the same for pipes, files and terminals.
        threading.Thread(
            target=self._read_lines, args=(loop,), name="console-stdin", daemon=True
        ).start()
        self._task = loop.create_task(self._serve())
        self._say(t("console.welcome"))

    async def stop_intake(self) -> None:
        self._taking = False

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # --- Notifier --------------------------------------------------------------------------

    async def progress(self, job: Job, step: int, total: int) -> None:
        self._say(t("console.step", job=job.id, step=step, total=total))

    async def deliver(self, job: Job, jpeg_path: str) -> Delivered:
        self._say(t("console.done", job=job.id, seed=job.spec.seed, path=jpeg_path))
        return Delivered(message_id=f"console-{job.id}", channel_id=job.requester.channel_id)

    async def deliver_text(self, job: Job) -> Delivered:
        self._say(t("vlm.described", job=job.id, text=job.text or ""))
        return Delivered(message_id=f"console-{job.id}", channel_id=job.requester.channel_id)

    async def failed(self, job: Job, reason: Message | str) -> None:
        self._say(t("console.failed", job=job.id, reason=reason))

    async def delete_message(self, channel_id: str, message_id: str) -> None:
        """Nothing to delete: what was printed stays printed."""

    # --- input -----------------------------------------------------------------------------

    def _read_lines(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            for line in self._stdin:
                loop.call_soon_threadsafe(self._lines.put_nowait, line)
        except (OSError, ValueError):
            pass  # stdin closed under us: treat it as the end of input
        finally:
            # RuntimeError: the loop is already closed, the process is exiting anyway.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._lines.put_nowait, None)

    async def _serve(self) -> None:
        while (line := await self._lines.get()) is not None:
            if line.strip():
                await self.handle_line(line)
        await self._finish_own_jobs()
        self._on_end()

    async def _finish_own_jobs(self) -> None:
        if self._wait_idle is None:
            return
        if await self._core.queue_of(self._me):
            self._say(t("console.draining"))
        await self._wait_idle(self._me.user_key)

    async def handle_line(self, line: str) -> None:
        """One command line; errors meant for the user are printed, not raised."""
        name, rest = split_command(line)
        try:
            await self._dispatch(name, rest)
        except TurbobotError as err:
            self._say(err.render())
        except Exception:
            # One bad line must not end the input task: the process would never see the end
            # of input, and so never exit.
            _log.exception("console command /%s failed", name)
            self._say(t("console.went_wrong"))

    async def _dispatch(self, name: str, rest: str) -> None:
        if name in {"", "imagine"}:
            await self._imagine(rest)
        elif name == "style":
            await self._style(rest)
        elif name == "history":
            await self._history()
        elif name == "queue":
            await self._queue()
        elif name == "cancel":
            await self._cancel(rest)
        elif name == "describe":
            await self._describe(rest)
        elif name in {"help", "start"}:
            self._say(help_text())
            for line in vlm_lines(self._core.vlm_availability(), Language.EN):
                self._say(line)
        else:
            self._say(t("console.unknown_command", name=name))

    async def _imagine(self, text: str) -> None:
        if not self._taking:
            self._say(t("console.shutting_down"))
            return
        # The core parses the options typed in the prompt (the same on every platform).
        ticket = await self._core.submit(GenerateRequest(self._me, text))
        job = ticket.job
        spec = job.spec
        key = "console.queued_style" if spec.style else "console.queued"
        self._say(
            t(
                key,
                job=job.id,
                position=ticket.position,
                eta=f"{ticket.eta_s:.0f}",
                seed=spec.seed,
                steps=spec.steps,
                aspect=spec.aspect,
                style=spec.style,
            )
        )

    async def _describe(self, text: str) -> None:
        if not self._taking:
            self._say(t("console.shutting_down"))
            return
        folder = self._describe_dir
        if folder is None:
            self._say(t("console.describe_off"))
            return
        if not text:
            self._say(t("console.describe_usage", folder=folder))
            return
        path = confined(folder, text)
        if path is None:
            self._say(t("console.describe_outside", path=text, folder=folder))
            return
        data = await asyncio.to_thread(read_capped, path, MAX_INPUT_BYTES + 1)
        ticket = await self._core.describe(self._me, data, Language.EN)
        self._say(
            t(
                "console.describe_queued",
                job=ticket.job.id,
                position=ticket.position,
                eta=f"{ticket.eta_s:.0f}",
            )
        )

    async def _style(self, name: str) -> None:
        if name:
            await self._core.set_default_style(self._me, name)
            current = await self._core.default_style(self._me)
            self._say(t("console.default_style", style=current or t("console.none")))
            return
        current = await self._core.default_style(self._me)
        styles = self._core.styles()
        if not styles:
            self._say(t("console.no_styles"))
            return
        for style in styles:
            mark = "*" if style.name == current else " "
            self._say(f"{mark} {style.name:<16} {style.display_name} - {style.description}")
        self._say(t("console.style_hint"))

    async def _history(self) -> None:
        jobs = await self._core.history(self._me, limit=10)
        if not jobs:
            self._say(t("console.no_images"))
        for job in jobs:
            path = self._core.image_file(job)
            where = str(path) if path else (job.error or str(state_word(job.state)))
            prompt = repr(job.spec.prompt[:50])
            state = f"{state_word(job.state)!s:<9}"
            seed = job.spec.seed
            self._say(
                t(
                    "console.history_line",
                    job=job.id,
                    state=state,
                    seed=seed,
                    prompt=prompt,
                    where=where,
                )
            )

    async def _queue(self) -> None:
        waiting = await self._core.queue_of(self._me)
        if not waiting:
            self._say(t("console.nothing_waiting"))
        for job, position in waiting:
            where = (
                t("console.running") if position == 0 else t("console.position", position=position)
            )
            self._say(f"#{job.id} {where}: {job.spec.prompt[:60]!r}")

    async def _cancel(self, arg: str) -> None:
        job_id = None  # alone: the core picks the newest waiting job, as on every platform
        if arg:
            try:
                job_id = int(arg.lstrip("#"))
            except ValueError:
                self._say(t("console.cancel_usage", arg=repr(arg)))
                return
        job = await self._core.cancel(self._me, job_id)
        self._say(t("console.cancelled", job=job.id))

    def _say(self, text: str) -> None:
        print(text, file=self._stdout, flush=True)


def confined(folder: Path, name: str) -> Path | None:
    """``name`` (relative to ``folder``, or absolute) as a regular file inside ``folder`` after
    resolving links and ``..``; None for anything else."""
    root = folder.resolve()
    path = (root / name.strip()).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def read_capped(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes: a bigger file is refused by the core as too large, unread."""
    with path.open("rb") as f:
        return f.read(limit)
