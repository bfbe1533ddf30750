"""Migrations (fresh and from every earlier version), atomic image writes, storage errors."""

from __future__ import annotations

import errno
import re
import shutil
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from bot.domain import GenerationSpec, Job, JobKind, JobState, Language, SettingsChange, Timings
from bot.errors import StorageError
from bot.i18n import msg
from bot.image_files import write_atomic
from bot.service import DB_NAME, Core
from bot.store import (
    MIGRATIONS_DIR,
    connect,
    migrate,
    migrations,
    open_store,
    storage_error,
)
from tests.core.conftest import OpenCore, request, user

LATEST = len(migrations())


def schema(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name"
        ).fetchall()
    return [(name, " ".join(sql.split())) for name, sql in rows]


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


async def test_fresh_database_gets_every_migration(tmp_path: Path) -> None:
    async with open_store(tmp_path / "t.db"):
        pass
    assert LATEST >= 2
    assert user_version(tmp_path / "t.db") == LATEST
    with sqlite3.connect(tmp_path / "t.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("start", range(1, LATEST))
async def test_upgrade_from_every_earlier_version_keeps_data(tmp_path: Path, start: int) -> None:
    old = tmp_path / "old.db"
    db = await connect(old)
    assert await migrate(db, upto=start) == start
    await db.execute(
        "INSERT INTO jobs (id, platform, user_id, display_name, channel_id, user_key, prompt, "
        "seed, steps, width, height, state, created_at) "
        "VALUES (1, 'console', 'u', 'U', 'c', 'console:u', 'kept', 1, 4, 1024, 1024, 'posted', 0)"
    )
    await db.execute("INSERT INTO user_prefs VALUES ('console:u', 'ink')")
    await db.close()

    async with open_store(old) as store:
        job = await store.get_job(1)
        style = await store.default_style("console:u")
    async with open_store(tmp_path / "fresh.db"):
        pass
    assert user_version(old) == LATEST
    assert schema(old) == schema(tmp_path / "fresh.db")
    assert job is not None
    assert job.spec.prompt == "kept"
    assert job.state is JobState.POSTED
    assert style == "ink"
    # A job from before issue 13 is one text-to-image picture.
    assert (job.spec.n, job.spec.kind, job.spec.init_image, job.images) == (
        1,
        JobKind.TXT2IMG,
        None,
        (),
    )


async def test_a_failing_migration_changes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        shutil.copy(path, folder / path.name)
    broken = f"{LATEST + 1:04d}_broken.sql"
    (folder / broken).write_text("CREATE TABLE extra (x);\nTHIS IS NOT SQL;\n")
    db = await connect(tmp_path / "t.db")
    await migrate(db, directory=folder, upto=LATEST)
    with pytest.raises(sqlite3.Error):
        await migrate(db, directory=folder)
    await db.close()
    assert user_version(tmp_path / "t.db") == LATEST
    assert "extra" not in [name for name, _ in schema(tmp_path / "t.db")]


async def test_job_round_trips_through_the_database(tmp_path: Path) -> None:
    spec = GenerationSpec("猫 🐈 on a roof", "ink", 2**32 - 1, 8, 1360, 768, 4.5, "blurry")
    job = Job(
        id=1,
        requester=user("bob", server="g1"),
        spec=spec,
        state=JobState.GENERATED,
        created_at=1.5,
        attempts=2,
        started_at=2.0,
        finished_at=3.0,
        image_path="images/2026/01/1.jpg",
        timings=Timings(1.0, 2.0, 3.0, 4.0, (0.5, 0.5)),
        parent_job_id=None,
    )
    async with open_store(tmp_path / "t.db") as store:
        await store.add_job(job)
        assert await store.get_job(1) == job
    async with open_store(tmp_path / "t.db") as store:
        assert store.next_job_id() == 2  # ids continue after a restart


async def test_requester_language_and_describe_language_are_kept_apart(tmp_path: Path) -> None:
    """Both branches added a language to jobs (0007: the requester's, for posts; 0009: the
    language a describe answers in): one column each, so neither overwrites the other."""
    who = replace(user("bob", server="g1"), language=Language.ZH)
    spec = replace(
        GenerationSpec("", None, 1, 4, 1024, 1024), kind=JobKind.DESCRIBE, language=Language.EN
    )
    job = Job(id=1, requester=who, spec=spec, state=JobState.POSTED, created_at=1.0, text="a cat")
    async with open_store(tmp_path / "t.db") as store:
        await store.add_job(job)
        stored = await store.get_job(1)
    assert stored is not None
    assert (stored.requester.language, stored.spec.language) == (Language.ZH, Language.EN)
    assert (stored.text, stored.spec.enhance) == ("a cat", False)


def test_write_atomic_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "images" / "2026" / "01" / "1.jpg"
    write_atomic(target, b"\xff\xd8data")
    assert target.read_bytes() == b"\xff\xd8data"
    assert [p.name for p in target.parent.iterdir()] == ["1.jpg"]


def test_a_failed_write_reports_the_problem_and_leaves_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "images"
    blocker.write_bytes(b"")  # a file where the folder should be
    with pytest.raises(OSError, match=r"(Not a directory|File exists)"):
        write_atomic(blocker / "1.jpg", b"\xff\xd8data")
    assert [p.name for p in tmp_path.iterdir()] == ["images"]


def test_storage_errors_say_what_happened() -> None:
    full = storage_error(OSError(errno.ENOSPC, "No space left"), msg("core.op.save_image"))
    locked = storage_error(sqlite3.OperationalError("database is locked"), msg("core.op.queue_job"))
    assert isinstance(full, StorageError)
    assert isinstance(locked, StorageError)
    assert str(full) == (
        "The disk is full: could not save the image. Free some space; nothing is lost."
    )
    assert "database is busy" in str(locked)
    assert "queue the job" in str(locked)


async def test_unreadable_database_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError, match="could not"):
        async with open_store(path):
            pass


# --- the operation a storage error names is in the user's language ----------------------------

ENGLISH_WORD = re.compile(r"[A-Za-z]{2,}")


def _locked_elsewhere(path: Path) -> sqlite3.Connection:
    """Another program holding the write lock (the user's operation then finds it busy)."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


WRITES: dict[str, Callable[[Core], Awaitable[object]]] = {
    "default style": lambda core: core.set_default_style(user("alice"), None),
    "privacy": lambda core: core.set_privacy(user("alice", server="g1"), hide_details=True),
    "settings": lambda core: core.update_server_settings(
        user("root", server="g1"), SettingsChange(language="zh"), is_admin=True
    ),
    "block": lambda core: core.set_blocked(user("root", server="g1"), "bob", True, is_admin=True),
    "queue": lambda core: core.submit(request(user("alice"))),
}


@pytest.mark.parametrize("operation", sorted(WRITES))
async def test_a_busy_database_names_the_operation_in_chinese(
    open_test_core: OpenCore, tmp_path: Path, operation: str
) -> None:
    """Before: the operation was an English literal inside the Chinese sentence
    (the Chinese sentence ended in "save your privacy choices")."""
    async with open_test_core(busy_timeout_ms=0) as core:
        other = _locked_elsewhere(tmp_path / "data" / DB_NAME)
        try:
            with pytest.raises(StorageError) as caught:
                await WRITES[operation](core)
        finally:
            other.rollback()
            other.close()
    assert caught.value.key == "core.database_busy"
    zh = caught.value.render(Language.ZH)
    assert not ENGLISH_WORD.search(zh), zh
    assert "could not" in caught.value.render(Language.EN)


def test_a_failed_group_commit_and_a_closing_database_speak_chinese() -> None:
    """The two failures the group commit makes itself (not from an SQLite error)."""
    closing = StorageError(msg("core.database_closing"))
    other = StorageError(
        msg("core.storage_error", what=msg("core.op.queue_job"), error="ValueError")
    )
    for err in (closing, other):
        assert not ENGLISH_WORD.search(err.render(Language.ZH).replace("ValueError", ""))
