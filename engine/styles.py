"""Style LoRAs: find them on disk, refuse bad ones, switch them through one fixed adapter slot.

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
from collections import OrderedDict
from dataclasses import dataclass, field
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
    for_diffusers,
    modules_of,
    normalise,
)

__all__ = ["LinearShapes", "LoraRefused", "Style", "StyleLibrary"]

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


# ---------------------------------------------------------------- adapters in the transformer


def load_adapter(pipe: Any, canonical: dict[str, Any], adapter: str, fname: str) -> None:
    """Load a canonical LoRA as ``adapter`` and check that every one of its modules got it.

    A CUDA out-of-memory error stays one (the executor lowers the profile); anything else
    diffusers/peft raise is a refusal naming the file.
    """
    import torch

    try:
        pipe.load_lora_weights(for_diffusers(canonical), adapter_name=adapter)
    except torch.cuda.OutOfMemoryError:
        drop_adapter(pipe, adapter)
        raise
    except Exception as exc:  # diffusers/peft raise many types for unusable state dicts
        drop_adapter(pipe, adapter)
        raise LoraRefused(
            f"{fname}: the LoRA could not be applied ({type(exc).__name__}: {exc})."
        ) from None
    want, got = len(modules_of(canonical)), len(lora_layers(pipe.transformer, adapter))
    if got != want:
        drop_adapter(pipe, adapter)
        raise LoraRefused(f"{fname}: only {got} of its {want} layers were loaded; refused.")
    keep_bf16(pipe.transformer, adapter)


def lora_layers(transformer: Any, adapter: str) -> dict[str, Any]:
    """Module name → peft LoRA layer that holds ``adapter``."""
    import torch

    return {
        name: m
        for name, m in transformer.named_modules()
        if isinstance(getattr(m, "lora_A", None), torch.nn.ModuleDict) and adapter in m.lora_A
    }


def keep_bf16(transformer: Any, adapter: str) -> None:
    """peft casts a new adapter to its base layer's dtype (float8 under ``low``): undo that.

    Only the slot (created zero) and Turbo (loaded before any cast) pass through here, so the
    cast never loses anything; fp8 LoRA weights would lose ~24 % and break the matmul.
    """
    import torch

    for layer in lora_layers(transformer, adapter).values():
        for holder in (layer.lora_A, layer.lora_B):
            if holder[adapter].weight.dtype != torch.bfloat16:
                holder[adapter].to(torch.bfloat16)


def drop_adapter(pipe: Any, adapter: str) -> None:
    if any(adapter in v for v in pipe.get_list_adapters().values()):
        pipe.delete_adapters(adapter)


@dataclass(frozen=True, slots=True)
class _Slot:
    modules: frozenset[str]
    rank: int
    layers: dict[str, Any] = field(compare=False)

    def fits(self, style: Style) -> bool:
        return style.rank <= self.rank and set(style.modules) <= self.modules


@dataclass(frozen=True, slots=True)
class _Cached:
    style: Style
    pairs: dict[str, tuple[Any, Any]]  # module → (A, B x strength), host memory


class StyleLibrary:
    """Installed styles, the LRU cache of resident ones (host memory) and the style slot."""

    def __init__(self, lora_dir: Path, linears: LinearShapes, max_resident: int) -> None:
        self.lora_dir = lora_dir
        self.linears = linears
        self.max_resident = max_resident
        self.styles: dict[str, Style] = {}
        self.refusals: dict[str, RefusedStyle] = {}
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._slot: _Slot | None = None
        self._in_slot: str | None = None  # whose weights the slot holds
        # Which adapters set_adapters last made active; a job with the same ones skips the call.
        self._active: tuple[str, ...] | None = None

    @property
    def refused(self) -> dict[str, str]:
        """Refused folder → why, in English (the operator's log and CLI)."""
        return {name: r.detail for name, r in self.refusals.items()}

    @property
    def resident(self) -> list[str]:
        return list(self._cache)

    def rescan(self, pipe: Any) -> None:
        """Re-read the folder; forget cached styles that were removed or whose file changed."""
        self.styles, self.refusals = scan_style_folders(self.lora_dir, self.linears)
        for name, old in list(self._cache.items()):
            if self.styles.get(name) != old.style:
                self._evict(name)

    def prepare_slot(self, pipe: Any) -> None:
        """Create the slot for the installed styles now (before ``torch.compile``)."""
        if self.styles and not all(self._slot and self._slot.fits(s) for s in self.styles.values()):
            self._make_slot(pipe)

    def slot_bytes(self) -> int:
        """bf16 bytes of the slot the installed styles need (for the memory plan)."""
        modules = {m for s in self.styles.values() for m in s.modules}
        rank = max((s.rank for s in self.styles.values()), default=0)
        return sum(rank * sum(self.linears[m]) * 2 for m in modules)

    def cache_bytes_max(self) -> int:
        """bf16 bytes of the resident cache when full of the largest installed styles."""
        sizes = sorted(
            (
                sum(s.rank * sum(self.linears[m]) * 2 for m in s.modules)
                for s in self.styles.values()
            ),
            reverse=True,
        )
        return sum(sizes[: self.max_resident])

    def unload_all(self, pipe: Any) -> None:
        """Forget every cached style (Turbo and the slot stay)."""
        for name in list(self._cache):
            self._evict(name)

    def activate(self, pipe: Any, style: Style | None, *, turbo: bool) -> None:
        """Make exactly Turbo (if ``turbo``) plus ``style`` active, loading it if needed."""
        names: list[str] = [TURBO_ADAPTER] if turbo else []
        if style is not None:
            cached = self._ensure_cached(style)
            if self._slot is None or not self._slot.fits(style):
                self._make_slot(pipe)
            if self._in_slot != style.name:
                self._fill_slot(cached)
            names.append(STYLE_SLOT)
        if self._active == tuple(names):
            return
        if not names:
            if pipe.get_list_adapters():
                pipe.disable_lora()
        else:
            pipe.enable_lora()
            pipe.set_adapters(names, adapter_weights=[1.0] * len(names))
        self._active = tuple(names)

    # --- internals

    def _ensure_cached(self, style: Style) -> _Cached:
        if style.name in self._cache:
            self._cache.move_to_end(style.name)
            return self._cache[style.name]
        while len(self._cache) >= self.max_resident:
            self._evict(next(iter(self._cache)))
        canonical = load_lora_tensors(style.lora_path, self.linears)
        cached = _Cached(style, _pairs(canonical, style.info.strength))
        self._cache[style.name] = cached
        log.info("Style %r cached (%d resident)", style.name, len(self._cache))
        return cached

    def _make_slot(self, pipe: Any) -> None:
        """(Re)create the slot over every installed style's modules at their largest rank."""
        import torch

        modules = frozenset(m for s in self.styles.values() for m in s.modules)
        rank = max((s.rank for s in self.styles.values()), default=1)
        drop_adapter(pipe, STYLE_SLOT)
        self._slot, self._in_slot, self._active = None, None, None
        zeros: dict[str, Any] = {}
        for m in sorted(modules):
            out_f, in_f = self.linears[m]
            zeros[f"{m}.lora_A.weight"] = torch.zeros(rank, in_f, dtype=torch.bfloat16)
            zeros[f"{m}.lora_B.weight"] = torch.zeros(out_f, rank, dtype=torch.bfloat16)
        load_adapter(pipe, zeros, STYLE_SLOT, "style slot")
        layers = lora_layers(pipe.transformer, STYLE_SLOT)
        self._slot = _Slot(modules, rank, layers)
        log.info("Style slot: %d layers at rank %d", len(modules), rank)

    def _fill_slot(self, cached: _Cached) -> None:
        import torch

        assert self._slot is not None  # noqa: S101 - activate() made it
        with torch.no_grad():
            for module, layer in self._slot.layers.items():
                a_slot = layer.lora_A[STYLE_SLOT].weight
                b_slot = layer.lora_B[STYLE_SLOT].weight
                pair = cached.pairs.get(module)
                if pair is None:
                    b_slot.zero_()  # a module this style does not target adds nothing
                    continue
                a, b = pair
                r = a.shape[0]
                a_slot[:r].copy_(a, non_blocking=True)
                b_slot[:, :r].copy_(b, non_blocking=True)
                if r < self._slot.rank:
                    a_slot[r:].zero_()
                    b_slot[:, r:].zero_()
        self._in_slot = cached.style.name

    def _evict(self, name: str) -> None:
        self._cache.pop(name)
        if self._in_slot == name:
            self._in_slot = None
        log.info("Style %r dropped from the cache", name)


def _pairs(canonical: dict[str, Any], strength: float) -> dict[str, tuple[Any, Any]]:
    """module → (A, B x strength) in bf16, pinned when CUDA is there (fast copies to the slot)."""
    import torch

    pin = torch.cuda.is_available()
    out: dict[str, tuple[Any, Any]] = {}
    for module in modules_of(canonical):
        a = canonical[f"{module}.lora_A.weight"].to(torch.bfloat16)
        b = (canonical[f"{module}.lora_B.weight"].float() * strength).to(torch.bfloat16)
        out[module] = (a.pin_memory(), b.pin_memory()) if pin else (a, b)
    return out
