"""``turbobot imagine``: one prompt from the command line, through the core.

The same path as a prompt in a chat: the core validates the prompt and its options (typed
inside the prompt too), checks an input image (size, format, decompression bomb), renders
``--n`` images on the local engine and stores them as history; this command is the platform
the result is delivered to, and copies the files out. Jobs are recorded as the console's
user ``cli`` in ``<data dir>/cli`` (see :func:`cli_slices`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sys
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from bot.config import Settings, find_env_file
from bot.domain import (
    MAX_INPUT_BYTES,
    Delivered,
    GenerateRequest,
    Job,
    Platform,
    Requester,
)
from bot.errors import BadRequest, TurbobotError
from bot.i18n import Message, msg
from bot.ports import Executor
from bot.preflight import load_settings
from bot.service import open_core
from bot.slices import CoreSettings, EngineSettings, core_settings, engine_settings
from engine.commands import format_timings

CLI_DIR = "cli"  # under the data dir
UNLIMITED = 1_000_000
CLI_USER = Requester(platform=Platform.CONSOLE, user_id="cli", display_name="cli", channel_id="cli")


@dataclass(frozen=True, slots=True)
class ImagineArgs:
    """``turbobot imagine``'s arguments; ``None``: the core's default."""

    prompt: str
    output: Path
    style: str | None = None
    seed: int | None = None
    steps: int | None = None
    aspect: str | None = None
    cfg: float | None = None
    negative: str | None = None
    n: int | None = None
    image: Path | None = None
    strength: float | None = None

    @classmethod
    def parsed(cls, args: argparse.Namespace) -> ImagineArgs:
        return cls(
            prompt=args.prompt,
            output=args.output,
            style=args.style,
            seed=args.seed,
            steps=args.steps,
            aspect=args.aspect,
            cfg=args.cfg,
            negative=args.negative,
            n=args.n,
            image=args.image,
            strength=args.strength,
        )

    def request(self) -> GenerateRequest:
        return GenerateRequest(
            requester=CLI_USER,
            prompt=self.prompt,
            style=self.style,
            seed=self.seed,
            steps=self.steps,
            aspect=self.aspect,
            cfg=self.cfg,
            negative_prompt=self.negative,
            n=self.n,
            strength=self.strength,
        )


class _Outbox:
    """The core's :class:`bot.ports.Notifier` for the one job of this command."""

    platform = Platform.CONSOLE

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.job: Job | None = None
        self.reason: Message | str | None = None

    async def progress(self, job: Job, step: int, total: int) -> None:
        """No progress bar: the timings are printed at the end."""

    async def deliver(self, job: Job, jpeg_path: str) -> Delivered:
        self.job = job
        self.done.set()
        return Delivered(message_id=f"cli-{job.id}", channel_id=job.requester.channel_id)

    async def deliver_text(self, job: Job) -> Delivered:
        """A describe's text (this command submits none, but the port has it)."""
        return await self.deliver(job, "")

    async def failed(self, job: Job, reason: Message | str) -> None:
        self.reason = reason
        self.done.set()

    async def delete_message(self, channel_id: str, message_id: str) -> None:
        """The command posts nothing it could delete."""


def main(args: argparse.Namespace) -> int:
    """``turbobot imagine``: the settings as ``turbobot run`` reads them, the local engine."""
    settings, problems = load_settings(find_env_file())
    if problems:
        for problem in problems:
            print(f"turbobot: {problem}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    core, engine = cli_slices(settings)
    from engine.executors import open_local_executor

    try:
        return asyncio.run(imagine(core, open_local_executor(engine), ImagineArgs.parsed(args)))
    except TurbobotError as exc:  # the engine's own one-line reasons (a model that won't load)
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, BadRequest) else 1


def cli_slices(settings: Settings) -> tuple[CoreSettings, EngineSettings]:
    """The core's and the engine's slices, both on ``<data dir>/cli``: the command's history
    and files stay apart from the bot's (job ids would collide, and the bot's queued jobs are
    not this command's to run). The LoRAs stay where the bot reads them."""
    cli_dir = settings.data_dir / CLI_DIR
    # The operator at the shell is not a chat user: no rate limit (the pending caps stay).
    core = replace(
        core_settings(settings), data_dir=cli_dir, rate_per_minute=UNLIMITED, rate_burst=UNLIMITED
    )
    engine = replace(
        engine_settings(settings), data_dir=cli_dir, lora_dir=settings.resolved_lora_dir
    )
    return core, engine


def read_input(path: Path) -> bytes:
    """The ``--image`` file, refused before it is read when it is over the core's cap (the core
    checks its format and pixels)."""
    try:
        size = path.stat().st_size
    except OSError as err:
        raise BadRequest(
            msg("core.cannot_read_file", path=str(path), why=err.strerror or str(err))
        ) from None
    if size > MAX_INPUT_BYTES:
        mib = 2**20
        raise BadRequest(
            msg("core.image_too_large", size=f"{size / mib:.1f}", limit=MAX_INPUT_BYTES // mib)
        )
    try:
        return path.read_bytes()
    except OSError as err:
        raise BadRequest(
            msg("core.cannot_read_file", path=str(path), why=err.strerror or str(err))
        ) from None


async def imagine(
    settings: CoreSettings,
    opened: AbstractAsyncContextManager[Executor],
    args: ImagineArgs,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run one job through the core on ``opened``'s executor; 0 when the files are written,
    2 when the core refused the request, 1 when the generation failed."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        image = read_input(args.image) if args.image is not None else None
    except TurbobotError as exc:
        print(f"error: {exc}", file=err)
        return 2
    async with opened as executor, open_core(settings, executor) as core:
        outbox = _Outbox()
        core.register(outbox)
        try:
            await core.submit(args.request(), image=image)
        except TurbobotError as exc:
            print(f"error: {exc}", file=err)
            return 2
        await outbox.done.wait()
        if outbox.job is None:
            print(f"error: {outbox.reason}", file=err)
            return 1
        _write_outputs(outbox.job, settings.data_dir, args.output, out)
    return 0


def _write_outputs(job: Job, data_dir: Path, output: Path, out: TextIO) -> None:
    """``output`` gets the posted image (the grid of several); ``output-k`` image ``k``."""
    shutil.copyfile(data_dir / (job.image_path or ""), output)
    print(f"{output}  {job.spec.aspect}  seed {job.spec.seed}", file=out)
    for k, relative in enumerate(job.images, start=1):
        each = output.with_name(f"{output.stem}-{k}{output.suffix}")
        shutil.copyfile(data_dir / relative, each)
        print(f"{each}  image {k} of {len(job.images)}", file=out)
    if job.timings is not None:
        print(format_timings(job.timings), file=out)
