"""``turbobot download``: the base model and the Turbo LoRA, checked before and after.

In order: list the files (one small API call per repository), check the free disk space for
what is not already there, download with ``huggingface_hub`` (its progress bars; a transfer
cut off is resumed, within the run and by running the command again), then verify every file
against the hub's own checksums (sha256 for LFS files, the git blob id for the small ones),
and print the settings that point the bot at what was downloaded.

By default the model goes to the Hugging Face cache (``HF_HOME``; the bot then finds it by its
repository id) and the Turbo LoRA to ``<lora dir>/turbo/`` (found there without any setting).
``--to DIR`` puts both in a folder instead.
"""

from __future__ import annotations

import fnmatch
import hashlib
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot import models

# Left free after the download: the OS, logs and the bot's images need some room too.
DISK_MARGIN_BYTES = 1 << 30
_CHUNK = 8 << 20


class DownloadError(Exception):
    """A download cannot start or did not arrive intact; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Wanted:
    """Files of one repository at one revision, to a folder or (``local_dir`` None) the cache."""

    setting: str  # the setting that will point at it, for the hint
    repo_id: str
    revision: str
    patterns: tuple[str, ...]
    local_dir: Path | None


@dataclass(frozen=True, slots=True)
class RemoteFile:
    path: str
    size: int
    sha256: str | None  # LFS files
    blob_id: str  # git blob sha1 (for LFS files, of the pointer)


# ---------------------------------------------------------------- plan


def remote_files(api: Any, wanted: Wanted) -> list[RemoteFile]:
    """The repository's files that match ``wanted.patterns``, with their sizes and hashes."""
    found = []
    for entry in api.list_repo_tree(wanted.repo_id, recursive=True, revision=wanted.revision):
        if not hasattr(entry, "blob_id"):  # a folder
            continue
        if any(fnmatch.fnmatch(entry.path, pattern) for pattern in wanted.patterns):
            sha256 = entry.lfs.sha256 if entry.lfs is not None else None
            found.append(RemoteFile(entry.path, int(entry.size), sha256, entry.blob_id))
    if not found:
        raise DownloadError(
            f"{wanted.repo_id}@{wanted.revision} has no file matching {', '.join(wanted.patterns)}"
        )
    return found


def local_path(wanted: Wanted, file: RemoteFile) -> Path | None:
    """Where the file is (or will be) on disk; None when it is not in the cache yet."""
    if wanted.local_dir is not None:
        return wanted.local_dir / file.path
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(wanted.repo_id, file.path, revision=wanted.revision)
    return Path(found) if isinstance(found, str) else None


def missing_bytes(wanted: Wanted, files: list[RemoteFile]) -> int:
    total = 0
    for file in files:
        path = local_path(wanted, file)
        if path is None or not path.is_file() or path.stat().st_size != file.size:
            total += file.size
    return total


def destination(wanted: Wanted) -> Path:
    if wanted.local_dir is not None:
        return wanted.local_dir
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _free_bytes(folder: Path) -> int:
    return shutil.disk_usage(_existing(folder)).free


def check_disk(need: int, folder: Path, free: Callable[[Path], int] = _free_bytes) -> None:
    """Refuse to start a download that cannot fit (with a margin left over)."""
    have = free(folder)
    if need + DISK_MARGIN_BYTES > have:
        raise DownloadError(
            f"{_gib(need)} GiB to download into {folder}, but only {_gib(have)} GiB are free "
            f"(and {_gib(DISK_MARGIN_BYTES)} GiB should stay free); free some space or use --to"
        )


def check_disks(needs: list[tuple[Path, int]], free: Callable[[Path], int] = _free_bytes) -> None:
    """:func:`check_disk` once per filesystem, with what every item needs there added up."""
    by_device: dict[int, tuple[Path, int]] = {}
    for folder, need in needs:
        device = _existing(folder).stat().st_dev
        first, total = by_device.get(device, (folder, 0))
        by_device[device] = (first, total + need)
    for folder, need in by_device.values():
        check_disk(need, folder, free)


def _existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.1f}"


# ---------------------------------------------------------------- fetch and verify


def fetch(wanted: Wanted, files: list[RemoteFile]) -> Path:
    """Download what is missing (huggingface_hub resumes partial files); the folder it is in."""
    from huggingface_hub import snapshot_download

    root = snapshot_download(
        wanted.repo_id,
        revision=wanted.revision,
        allow_patterns=[f.path for f in files],
        local_dir=wanted.local_dir,
    )
    return Path(root)


def verify(root: Path, files: list[RemoteFile]) -> list[str]:
    """The files whose content does not match the hub's checksum (empty when all is well)."""
    bad = []
    for file in files:
        path = root / file.path
        if not path.is_file():
            bad.append(f"{file.path} (missing)")
        elif file.sha256 is not None and _sha256(path) != file.sha256:
            bad.append(f"{file.path} (sha256 differs)")
        elif file.sha256 is None and _git_blob_id(path) != file.blob_id:
            bad.append(f"{file.path} (git hash differs)")
    return bad


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _git_blob_id(path: Path) -> str:
    data = path.read_bytes()  # only small (non-LFS) files are hashed this way
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


# ---------------------------------------------------------------- the command


def wanted_items(
    *,
    model: bool,
    turbo: bool,
    to: Path | None,
    lora_dir: Path,
    model_repo: str = models.BASE_MODEL_REPO,
    revision: str = "main",
    turbo_repo: str = models.TURBO_LORA_REPO,
    turbo_file: str = models.TURBO_LORA_FILE,
) -> list[Wanted]:
    items = []
    if model:
        folder = None if to is None else to / model_repo.rsplit("/", 1)[-1]
        patterns = models.BASE_MODEL_PATTERNS
        items.append(Wanted("TURBOBOT_MODEL", model_repo, revision, patterns, folder))
    if turbo:
        folder = lora_dir / "turbo" if to is None else to
        items.append(Wanted("TURBOBOT_TURBO_LORA", turbo_repo, "main", (turbo_file,), folder))
    return items


def download(items: list[Wanted], *, api: Any = None) -> list[str]:
    """Plan, check the disk, fetch and verify each item; returns the setting lines to use."""
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    plans = [(wanted, remote_files(api, wanted)) for wanted in items]
    check_disks([(destination(w), missing_bytes(w, files)) for w, files in plans])
    hints = []
    for wanted, files in plans:
        print(f"{wanted.repo_id}: {len(files)} file(s), {_gib(sum(f.size for f in files))} GiB")
        root = fetch(wanted, files)
        print(f"{wanted.repo_id}: verifying checksums ...", flush=True)
        bad = verify(root, files)
        if bad:
            raise DownloadError(
                f"{wanted.repo_id}: {', '.join(bad)}; delete those files and run again"
            )
        hints.append(_hint(wanted, root, files))
    return hints


def _hint(wanted: Wanted, root: Path, files: list[RemoteFile]) -> str:
    if wanted.setting == "TURBOBOT_MODEL":
        where = wanted.repo_id if wanted.local_dir is None else str(root.resolve())
        return f"TURBOBOT_MODEL={where}"
    path = (root / files[0].path).resolve()
    others = [p.name for p in path.parent.glob("*.safetensors") if p != path]
    if wanted.local_dir is not None and wanted.local_dir.name == "turbo" and not others:
        return f"# TURBOBOT_TURBO_LORA can stay unset: {path} is found in {path.parent}/"
    return f"TURBOBOT_TURBO_LORA={path}"


def main(**options: Any) -> int:
    """``turbobot download``; exit code 0, 1 (failed) or 130 (interrupted: run again to resume)."""
    try:
        hints = download(wanted_items(**options))
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    except DownloadError as exc:
        print(f"turbobot download: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the hub's own errors: not found, offline, network
        print(f"turbobot download: {type(exc).__name__}: {_first_line(exc)}", file=sys.stderr)
        return 1
    print("done, all files verified. Settings for .env:")
    for line in hints:
        print(line)
    return 0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
