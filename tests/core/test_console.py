"""The console adapter over the real core: lines in, answers and JPEG paths out."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from adapters.console import ConsoleAdapter
from tests.core.conftest import OpenCore, make_settings
from tests.fakes import is_jpeg


async def run_console(open_test_core: OpenCore, tmp_path: Path, text: str) -> list[str]:
    out = io.StringIO()
    ended = asyncio.Event()
    async with open_test_core(notifiers=()) as core:
        console = ConsoleAdapter(
            core,
            on_end_of_input=ended.set,
            wait_until_idle=core.wait_until_idle,
            stdin=io.StringIO(text),
            stdout=out,
        )
        core.register(console)
        await console.start()
        await ended.wait()
        await console.stop_intake()
        await console.aclose()
    return out.getvalue().splitlines()


async def test_piped_session(open_test_core: OpenCore, tmp_path: Path) -> None:
    lines = await run_console(
        open_test_core,
        tmp_path,
        "a lighthouse at dusk --seed 5\n"
        "\n"
        "/imagine@bot --steps 2 a boat --style ink\n"
        "/imagine --steps 99 bad\n"
        "/style watercolor\n"
        "/style\n"
        "/frobnicate\n"
        "/help\n",
    )
    text = "\n".join(lines)
    assert "#1 queued: position 1" in text
    assert "seed 5" in text
    assert "#2 queued" in text
    assert "style ink" in text
    assert "Steps must be from 1 to 8, not 99." in lines
    assert "Default style: watercolor" in lines
    assert any(line.startswith("* watercolor") for line in lines)
    assert "Unknown command /frobnicate. Type /help for the list." in lines
    assert "#2 step 2/2" in lines
    done = [line for line in lines if " done " in line]
    assert len(done) == 2
    for line in done:
        path = Path(line.rsplit(": ", 1)[1])
        assert is_jpeg(path)


async def test_history_queue_and_cancel(open_test_core: OpenCore, tmp_path: Path) -> None:
    lines = await run_console(
        open_test_core,
        tmp_path,
        "/cancel\n/cancel abc\n/queue\n/history\nfirst\n/history\n",
    )
    assert "You have no waiting jobs to cancel." in lines  # the core's words
    assert "/cancel takes a job number, like /cancel 12 (not 'abc')." in lines
    assert "Nothing waiting." in lines
    assert "No images yet." in lines
    assert any(line.startswith("#1 ") and "'first'" in line for line in lines)


async def test_end_of_input_with_nothing_to_do_ends_at_once(
    open_test_core: OpenCore, tmp_path: Path
) -> None:
    lines = await run_console(open_test_core, tmp_path, "")
    assert lines == ["turbobot console: type a prompt, or /help. End of input (Ctrl-D) quits."]


def test_composition_root_picks_the_console_without_tokens(tmp_path: Path) -> None:
    from bot.entry.run import build_adapters
    from bot.slices import split

    class NoCore:  # build_adapters only stores the core in each adapter
        async def wait_until_idle(self, user_key: str) -> None:
            return None

    console = build_adapters(split(make_settings(tmp_path)), NoCore(), lambda: None)  # type: ignore[arg-type]
    nothing = build_adapters(
        split(make_settings(tmp_path, TURBOBOT_CONSOLE=False)),
        NoCore(),  # type: ignore[arg-type]
        lambda: None,
    )
    assert [type(a).__name__ for a in console] == ["ConsoleAdapter"]
    assert nothing == []


def test_the_console_slice_carries_the_describe_folder_and_nothing_else(tmp_path: Path) -> None:
    from bot.slices import ConsoleSettings, split

    pictures = tmp_path / "pictures"
    slices = split(make_settings(tmp_path, TURBOBOT_DESCRIBE_DIR=str(pictures)))
    assert slices.console == ConsoleSettings(describe_dir=pictures)
    assert split(make_settings(tmp_path)).console == ConsoleSettings(describe_dir=None)
    assert split(make_settings(tmp_path, TURBOBOT_CONSOLE=False)).console is None


async def test_describe_reads_only_inside_the_operators_folder(
    open_test_core: OpenCore, tmp_path: Path
) -> None:
    from PIL import Image

    pictures = tmp_path / "pictures"
    pictures.mkdir()
    Image.new("RGB", (80, 80), (9, 99, 199)).save(pictures / "cat.png")
    Image.new("RGB", (80, 80)).save(tmp_path / "secret.png")  # beside the folder, not in it
    (pictures / "link.png").symlink_to(tmp_path / "secret.png")
    out = io.StringIO()
    ended = asyncio.Event()
    async with open_test_core(notifiers=()) as core:
        console = ConsoleAdapter(
            core,
            describe_dir=pictures,
            on_end_of_input=ended.set,
            wait_until_idle=core.wait_until_idle,
            stdin=io.StringIO(
                "/describe cat.png\n/describe ../secret.png\n/describe link.png\n"
                f"/describe {tmp_path / 'secret.png'}\n/describe\n/help\n"
            ),
            stdout=out,
        )
        core.register(console)
        await console.start()
        await ended.wait()
        await console.aclose()
    lines = out.getvalue().splitlines()
    assert any(line.startswith("#1 describe queued") for line in lines)
    assert "#1 · A prompt for your picture:" in lines
    assert "A small square picture, described in en." in lines
    assert sum("is not a file inside" in line for line in lines) == 3
    assert any(line.startswith("Usage: /describe PATH") for line in lines)
    assert sum(line.startswith("✅") for line in lines) == 3  # /help: each VLM feature
    assert not any(line.startswith("#2") for line in lines)  # nothing else was queued


async def test_describe_is_off_without_a_folder(open_test_core: OpenCore, tmp_path: Path) -> None:
    lines = await run_console(open_test_core, tmp_path, "/describe /etc/passwd\n")
    assert any("TURBOBOT_DESCRIBE_DIR" in line for line in lines)
