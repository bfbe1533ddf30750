"""``turbobot imagine`` goes through the core (issue 13 on the command line): ``--n``,
``--image`` and ``--strength`` reach the engine as the core's img2img job, and a bad input
file is refused by the core's own checks before anything runs."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from PIL import Image

from bot.domain import JobKind
from bot.entry.cli import _parser
from bot.entry.imagine import ImagineArgs, cli_slices, imagine
from bot.ports import Executor
from bot.testing.executor import FakeExecutor
from tests.core.conftest import make_settings
from tests.fakes import is_jpeg


@asynccontextmanager
async def opened(executor: FakeExecutor) -> AsyncIterator[Executor]:
    yield executor


def png(path: Path, size: tuple[int, int] = (96, 64)) -> Path:
    Image.new("RGB", size, (200, 30, 30)).save(path, format="PNG")
    return path


def args_for(argv: list[str]) -> ImagineArgs:
    return ImagineArgs.parsed(_parser().parse_args(["imagine", *argv]))


async def test_n_image_and_strength_become_the_cores_img2img_job(tmp_path: Path) -> None:
    core, _ = cli_slices(make_settings(tmp_path / "data"))
    source, out = png(tmp_path / "in.png"), tmp_path / "fox.jpg"
    argv = ["a fox", "--n", "4", "--image", str(source), "--strength", "0.5", "-o", str(out)]
    executor, printed, errors = FakeExecutor(), io.StringIO(), io.StringIO()
    code = await imagine(core, opened(executor), args_for(argv), out=printed, err=errors)
    assert (code, errors.getvalue()) == (0, "")
    ((_, spec),) = executor.calls
    assert (spec.kind, spec.n, spec.strength) == (JobKind.IMG2IMG, 4, 0.5)
    assert spec.init_image is not None
    assert (core.data_dir / spec.init_image).is_file()  # the core stored the input it checked
    assert is_jpeg(out)  # the grid
    for k in range(1, 5):
        assert is_jpeg(tmp_path / f"fox-{k}.jpg")
    assert f"seed {spec.seed}" in printed.getvalue()


async def test_options_typed_in_the_prompt_count_too(tmp_path: Path) -> None:
    core, _ = cli_slices(make_settings(tmp_path / "data"))
    executor = FakeExecutor()
    argv = ["a fox --n 2 --ar 16:9", "-o", str(tmp_path / "o.jpg")]
    assert await imagine(core, opened(executor), args_for(argv), out=io.StringIO()) == 0
    ((_, spec),) = executor.calls
    assert (spec.n, spec.aspect, spec.prompt) == (2, "16:9", "a fox")


async def test_a_file_that_is_not_an_image_is_refused_with_a_message(tmp_path: Path) -> None:
    core, _ = cli_slices(make_settings(tmp_path / "data"))
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is not a picture")
    for image in (bad, tmp_path / "missing.png"):
        executor, errors = FakeExecutor(), io.StringIO()
        argv = ["a fox", "--image", str(image), "-o", str(tmp_path / "o.jpg")]
        code = await imagine(core, opened(executor), args_for(argv), out=io.StringIO(), err=errors)
        assert code == 2
        assert errors.getvalue().startswith("error: ")
        assert executor.calls == []
    assert not (tmp_path / "o.jpg").exists()
