"""One tiny pipeline per test session, built offline into a temporary data dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import Settings
from bot.domain import ASPECTS, GenerationSpec
from engine.loading import load_engine
from engine.pipeline import Engine

TEST_SIDE = 64  # the tiny model renders every aspect with this long side in tests


def tiny_settings(data_dir: Path, **extra: str) -> Settings:
    env = {"TURBOBOT_MODEL": "tiny", "TURBOBOT_DATA_DIR": str(data_dir)}
    env["TURBOBOT_TINY_SIDE"] = str(TEST_SIDE)
    return Settings(_env_file=None, **(env | extra))  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("turbobot-data")


@pytest.fixture(scope="session")
def session_engine(tiny_data_dir: Path) -> Engine:
    return load_engine(tiny_settings(tiny_data_dir))


@pytest.fixture
def engine(session_engine: Engine) -> Iterator[Engine]:
    """The shared engine, with resident styles dropped and the render size reset afterwards."""
    yield session_engine
    session_engine.max_side = TEST_SIDE
    session_engine.styles.unload_all(session_engine.pipe)


def spec(prompt: str = "a red fox in the snow", **kw: object) -> GenerationSpec:
    a = ASPECTS[str(kw.pop("aspect", "1:1"))]
    fields: dict[str, object] = {"style": None, "seed": 7, "steps": 2, "width": a.width}
    fields |= {"height": a.height} | kw
    return GenerationSpec(prompt=prompt, **fields)  # type: ignore[arg-type]


def no_progress(step: int, total: int) -> None:
    """Progress is not under test here."""
