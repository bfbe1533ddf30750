"""``/style list`` attaches style previews: real adapter + real core against the fake Discord."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from bot.config import Settings
from bot.domain import StyleInfo
from bot.testing.executor import FakeExecutor, tiny_jpeg
from tests.discord.conftest import running_bot
from tests.discord.fake_discord import JSON, FakeDiscord, InteractionLog
from tests.discord.test_adapter import _edited
from tests.fakes import FakeClock


def _style(name: str, preview: Path | None) -> StyleInfo:
    path = None if preview is None else str(preview)
    return StyleInfo(name, name.title(), name, f"the {name} look", 1.0, preview_path=path)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _tiny_png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (seed, 0, 0)).save(buf, format="PNG")
    return buf.getvalue()


async def _listed(fake: FakeDiscord, log: InteractionLog) -> tuple[str, JSON]:
    text = (await _edited(fake, log, "`plain`"))[-1]
    assert log.original is not None
    return text, log.original


async def test_style_list_attaches_previews_and_skips_missing_or_too_big(
    settings: Settings, fake: FakeDiscord, tmp_path: Path
) -> None:
    ink = _write(tmp_path / "ink.jpg", tiny_jpeg(1))
    neon = _write(tmp_path / "neon-preview.PNG", _tiny_png(200))
    big = _write(tmp_path / "huge.jpg", tiny_jpeg(3, 256, 256))
    # Room for the two small previews only: the big one is over the interaction's limit.
    fake.attachment_size_limit = ink.stat().st_size + neon.stat().st_size + 16
    assert big.stat().st_size > fake.attachment_size_limit
    styles = [
        _style("ink", ink),
        _style("plain", None),
        _style("gone", tmp_path / "deleted-since-scan.jpg"),
        _style("huge", big),
        _style("neon", neon),
    ]
    async with running_bot(settings, FakeExecutor(style_list=styles), FakeClock()):
        log = await fake.slash("style", sub="list")
        text, reply = await _listed(fake, log)

    assert log.callbacks[0]["data"]["flags"] & 64  # ephemeral
    assert [a["filename"] for a in reply["attachments"]] == ["ink.jpg", "neon.png"]
    assert reply["_files"] == [ink.read_bytes(), neon.read_bytes()]
    for name in ("ink", "plain", "gone", "huge", "neon"):  # every style listed, preview or not
        assert f"(`{name}`)" in text
    assert "Previews attached for 2 of the 4 styles" in text


async def test_style_list_attaches_at_most_ten_but_lists_every_style(
    settings: Settings, fake: FakeDiscord, tmp_path: Path
) -> None:
    styles = [_style("plain", None)] + [
        _style(f"s{i:02d}", _write(tmp_path / f"s{i:02d}.jpg", tiny_jpeg(i))) for i in range(12)
    ]
    async with running_bot(settings, FakeExecutor(style_list=styles), FakeClock()):
        log = await fake.slash("style", sub="list")
        text, reply = await _listed(fake, log)

    assert [a["filename"] for a in reply["attachments"]] == [f"s{i:02d}.jpg" for i in range(10)]
    assert all(f"(`s{i:02d}`)" in text for i in range(12))
    assert text.startswith("-# Previews attached for 10 of the 12 styles")


async def test_style_list_without_previews_has_no_files_and_no_note(
    settings: Settings, fake: FakeDiscord
) -> None:
    async with running_bot(settings, FakeExecutor(style_list=[_style("plain", None)]), FakeClock()):
        log = await fake.slash("style", sub="list")
        text, reply = await _listed(fake, log)
    assert reply["attachments"] == []
    assert "Previews" not in text
