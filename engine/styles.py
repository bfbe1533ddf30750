"""Style LoRAs: find them on disk and refuse bad ones; :mod:`engine.style_library` switches them
through one fixed adapter slot.

A style is ``<lora_dir>/<name>/`` with one ``.safetensors`` file and a ``style.toml`` manifest.
Files are checked before any tensor is read: the safetensors header must parse and cover the
whole file (catches pickles renamed ``.safetensors``, corrupt and truncated files), and every key
must map to a Linear of *this* transformer with fitting shapes (:mod:`engine.lora_keys`: every
real key layout, alpha folded in). Manifests are validated with a strict schema, and every path
in them must stay inside the style's folder.

Switching: the transformer holds exactly two LoRA adapters, ``turbo`` and one style **slot**
sized for every installed style (their modules, their largest rank). A switch copies the
style's cached weights into the slot in place (strength folded into B, rank zero-padded), so the
module tree never changes: ``torch.compile`` never recompiles, nothing is fused (lossy in bf16),
and LoRA weights stay bf16 whatever the base weights are stored in.
"""

from __future__ import annotations

import json
import logging
import re
import struct
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.domain import RefusedStyle, StyleInfo
from engine.lora_keys import (
    Header,
    LinearShapes,
    LoraRefused,
    LoraReport,
    check_header,
    normalise,
)

__all__ = ["LinearShapes", "LoraRefused", "Style"]

log = logging.getLogger(__name__)

STYLE_NAME = re.compile(r"[a-z0-9_-]{1,32}")
MANIFEST = "style.toml"
TURBO_DIR = "turbo"  # the Turbo LoRA's own folder under the LoRA dir, not a style
TURBO_ADAPTER = "turbo"
STYLE_SLOT = "style"  # the one adapter every style is copied into
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own cap on the JSON header
MAX_PREVIEW_BYTES = 8 * 2**20
PREVIEW_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
_DTYPE_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1,
}  # fmt: skip


class Manifest(BaseModel):
    """``style.toml``: strict types (``strength = "high"`` or ``nsfw = "true"`` are refused, not
    guessed) and no unknown keys (a typo such as ``nfsw`` must not silently mean "safe")."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    name_en: str | None = Field(default=None, min_length=1, max_length=64)
    name_zh: str | None = Field(default=None, min_length=1, max_length=64)
    description: str = Field(default="", max_length=300)
    strength: float = Field(default=1.0, ge=0.0, le=2.0)
    prompt_prefix: str = Field(default="", max_length=300)
    prompt_suffix: str = Field(default="", max_length=300)
    trigger_words: list[str] = Field(default_factory=list, max_length=16)
    preview: str | None = Field(default=None, max_length=200)
    nsfw: bool = False


@dataclass(frozen=True, slots=True)
class Style:
    """An installed style: what users see plus what the engine needs to apply it."""

    info: StyleInfo
    lora_path: Path
    prompt_prefix: str = ""
    prompt_suffix: str = ""
    trigger_words: tuple[str, ...] = ()
    file_id: tuple[int, int] = (0, 0)  # (size, mtime_ns): a changed file is reloaded on rescan
    modules: tuple[str, ...] = ()  # canonical module names the LoRA targets
    rank: int = 0

    @property
    def name(self) -> str:
        return self.info.name

    def apply_to(self, prompt: str) -> str:
        """The prompt with the style's prefix, trigger words and suffix around it."""
        parts = [self.prompt_prefix, *self.trigger_words, prompt, self.prompt_suffix]
        return ", ".join(p.strip() for p in parts if p.strip())


# ---------------------------------------------------------------- names and paths


def check_style_name(name: str) -> None:
    if not STYLE_NAME.fullmatch(name):
        raise LoraRefused(
            f"Style name {name!r} is not allowed: use 1-32 lowercase letters, digits, '-' or '_'.",
            "styles.refused.name",
        )


def style_dir(lora_dir: Path, name: str) -> Path:
    """The folder of style ``name``, refusing names or symlinks that lead out of ``lora_dir``."""
    check_style_name(name)
    root = lora_dir.resolve()
    folder = (root / name).resolve()
    if folder.parent != root:
        raise LoraRefused(
            f"Style {name!r} points outside the LoRA folder; refused.", "styles.refused.outside"
        )
    return folder


def _single_safetensors(folder: Path, root: Path) -> Path:
    files = sorted(folder.glob("*.safetensors"))
    if len(files) != 1:
        raise LoraRefused(
            f"{folder.name}: expected exactly one .safetensors file, found {len(files)}.",
            "styles.refused.file_count",
            found=str(len(files)),
        )
    path = files[0].resolve()
    if not path.is_relative_to(root):
        raise LoraRefused(
            f"{folder.name}: {files[0].name} links outside the LoRA folder; refused.",
            "styles.refused.outside",
        )
    return path


# ---------------------------------------------------------------- file checks


def _not_safetensors(fname: str, why: str) -> LoraRefused:
    return LoraRefused(f"{fname}: {why}", "styles.refused.not_safetensors", file=fname)


def read_header(path: Path) -> Header:
    """Tensor name → (dtype, shape) from a safetensors header, without reading any tensor.

    Refuses anything that is not a complete, well-formed safetensors file: pickles
    (``.bin``/``.pt``, even renamed), random bytes, files cut short by an interrupted download,
    and headers with wrong types (shapes that are not integers, string offsets, deep nesting).
    """
    if path.suffix != ".safetensors":
        raise _not_safetensors(path.name, "only .safetensors files are loaded (never pickle).")
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise _not_safetensors(path.name, "file is empty or truncated.")
        (n,) = struct.unpack("<Q", head)
        if n > min(size - 8, _MAX_HEADER) or n < 2:
            raise _not_safetensors(
                path.name, "not a safetensors file (a pickle or corrupt); refused."
            )
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise _not_safetensors(
            path.name, "not a safetensors file (a pickle or corrupt); refused."
        ) from None
    if not isinstance(header, dict):
        raise _not_safetensors(path.name, "corrupt safetensors header.")
    return _tensors_in(header, path.name, size - 8 - n)


def _tensors_in(header: dict[str, Any], fname: str, data_len: int) -> Header:
    out: Header = {}
    end = 0
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        parsed = _entry(entry)
        if parsed is None:
            raise _not_safetensors(fname, f"corrupt safetensors header (entry {key[:80]!r}).")
        dtype, shape, stop = parsed
        out[key] = (dtype, shape)
        end = max(end, stop)
    if end != data_len:
        raise _not_safetensors(
            fname, f"truncated or corrupt (data is {data_len} bytes, header says {end})."
        )
    return out


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _entry(entry: object) -> tuple[str, tuple[int, ...], int] | None:
    """(dtype, shape, end offset) of one well-formed header entry, else None."""
    if not isinstance(entry, dict):
        return None
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in _DTYPE_BYTES:
        return None
    if not isinstance(shape, list) or len(shape) > 8 or not all(_is_int(d) for d in shape):
        return None
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) for o in offsets):
        return None
    numel = 1
    for d in shape:
        numel *= d
    start, stop = offsets
    if stop - start != numel * _DTYPE_BYTES[dtype]:
        return None
    return dtype, tuple(shape), stop


def check_lora_file(path: Path, linears: LinearShapes) -> LoraReport:
    """The file's report; refused unless every key maps onto this transformer."""
    return check_header(read_header(path), linears, path.name)


def load_lora_tensors(path: Path, linears: LinearShapes) -> dict[str, Any]:
    """Check, read the tensors ourselves (diffusers never falls back to a pickle), normalise."""
    from safetensors.torch import load_file

    check_header(read_header(path), linears, path.name)
    try:
        tensors = dict(load_file(str(path)))
    except Exception as exc:  # safetensors raises its own error types for corrupt data
        raise LoraRefused(
            f"{path.name}: could not be read ({exc}).", "styles.refused.unreadable", file=path.name
        ) from None
    return normalise(tensors, linears, path.name)


def linear_shapes(transformer: Any) -> LinearShapes:
    import torch

    return {
        name: (m.out_features, m.in_features)
        for name, m in transformer.named_modules()
        if isinstance(m, torch.nn.Linear)
    }


# ---------------------------------------------------------------- manifests and scanning


def read_manifest(folder: Path) -> Manifest:
    try:
        data = tomllib.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        raise LoraRefused(
            f"{folder.name}: unreadable {MANIFEST} ({exc}).",
            "styles.refused.manifest",
            detail=str(exc),
        ) from None
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        why = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors()
        )
        raise LoraRefused(
            f"{folder.name}: {MANIFEST} is invalid ({why}).", "styles.refused.manifest", detail=why
        ) from None


def inside(folder: Path, relative: str) -> Path | None:
    """``folder/relative`` if it stays inside ``folder`` (no ``..``, absolute path or symlink
    leading out) and is a regular file; else None."""
    rel = Path(relative)
    if rel.is_absolute() or ".." in rel.parts or not relative.strip():
        return None
    root = folder.resolve()
    path = (root / rel).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def preview_of(folder: Path, preview: str | None) -> Path | None:
    """The manifest's preview image, only if it is a small, real image inside the folder."""
    if preview is None:
        return None
    path = inside(folder, preview)
    ok = (
        path is not None
        and path.suffix.lower() in PREVIEW_SUFFIXES
        and path.stat().st_size <= MAX_PREVIEW_BYTES
        and _decodes(path)
    )
    if not ok or path is None:
        log.warning(
            "Style %r: preview %r is not an image file (<= %d MiB) inside its folder; ignored.",
            folder.name,
            preview[:80],
            MAX_PREVIEW_BYTES // 2**20,
        )
        return None
    return path


def _decodes(path: Path) -> bool:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.verify()
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError):
        return False
    return True


def read_style(lora_dir: Path, name: str, linears: LinearShapes) -> Style:
    folder = style_dir(lora_dir, name)
    lora = _single_safetensors(folder, lora_dir.resolve())
    report = check_header(read_header(lora), linears, lora.name)
    m = read_manifest(folder)
    preview = preview_of(folder, m.preview)
    info = StyleInfo(
        name=name,
        display_name=m.name_en or name,
        display_name_zh=m.name_zh or m.name_en or name,
        description=m.description,
        strength=m.strength,
        preview_path=str(preview) if preview else None,
        nsfw=m.nsfw,
    )
    stat = lora.stat()
    return Style(
        info=info,
        lora_path=lora,
        prompt_prefix=m.prompt_prefix,
        prompt_suffix=m.prompt_suffix,
        trigger_words=tuple(m.trigger_words),
        file_id=(stat.st_size, stat.st_mtime_ns),
        modules=report.modules,
        rank=report.rank,
    )


def scan_styles(lora_dir: Path, linears: LinearShapes) -> tuple[dict[str, Style], dict[str, str]]:
    """All usable styles, and the refused folders with the reason for each (in English)."""
    styles, refused = scan_style_folders(lora_dir, linears)
    return styles, {name: r.detail for name, r in refused.items()}


def scan_style_folders(
    lora_dir: Path, linears: LinearShapes
) -> tuple[dict[str, Style], dict[str, RefusedStyle]]:
    """All usable styles, and the refused folders with why (catalogue key and English detail)."""
    styles: dict[str, Style] = {}
    refused: dict[str, RefusedStyle] = {}
    if not lora_dir.is_dir():
        return styles, refused
    for folder in sorted(lora_dir.iterdir()):
        if folder.name == TURBO_DIR or not (folder / MANIFEST).exists():
            continue
        try:
            styles[folder.name] = read_style(lora_dir, folder.name, linears)
        except LoraRefused as exc:
            refused[folder.name] = _refusal(folder.name, exc.key, exc.params, str(exc))
            log.warning("Style %r refused: %s", folder.name, exc)
        except OSError as exc:
            refused[folder.name] = _unreadable(folder.name, str(exc))
            log.warning("Style %r refused: %s", folder.name, exc)
        except Exception as exc:  # one broken folder never stops the bot
            detail = f"{folder.name}: could not be read ({type(exc).__name__})."
            refused[folder.name] = _unreadable(folder.name, detail)
            log.warning("Style %r refused", folder.name, exc_info=True)
    return styles, refused


def _refusal(name: str, key: str, params: dict[str, str], detail: str) -> RefusedStyle:
    return RefusedStyle(name, key, tuple(sorted(params.items())), detail)


def _unreadable(name: str, detail: str) -> RefusedStyle:
    return _refusal(name, "styles.refused.unreadable", {"file": name}, detail)
