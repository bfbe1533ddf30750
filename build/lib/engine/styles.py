"""Style LoRAs: find them on disk, refuse bad ones, keep a few resident as named adapters.

A style is ``<lora_dir>/<name>/`` with one ``.safetensors`` file and a ``style.toml`` manifest.
Files are checked before any tensor is read: the safetensors header must parse and cover the
whole file (catches pickles renamed ``.safetensors``, corrupt and truncated files), and every key
must name a Linear of *this* transformer with matching shapes (catches LoRAs for other models).
Styles are switched with ``set_adapters`` only: never fuse/unfuse (lossy in bf16), never reload.
"""

from __future__ import annotations

import json
import logging
import re
import struct
import tomllib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.domain import StyleInfo

log = logging.getLogger(__name__)

STYLE_NAME = re.compile(r"[a-z0-9_-]{1,32}")
MANIFEST = "style.toml"
TURBO_DIR = "turbo"  # the Turbo LoRA's own folder under the LoRA dir, not a style
TURBO_ADAPTER = "turbo"
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own cap on the JSON header

LinearShapes = dict[str, tuple[int, int]]
"""Module name (as in ``transformer.named_modules()``) → (out_features, in_features)."""


class LoraRefused(Exception):
    """A LoRA file or style folder that must not be loaded; ``str()`` says why, for users."""


@dataclass(frozen=True, slots=True)
class Style:
    """An installed style: what users see plus what the engine needs to apply it."""

    info: StyleInfo
    lora_path: Path
    prompt_prefix: str = ""
    prompt_suffix: str = ""
    trigger_words: tuple[str, ...] = ()
    file_id: tuple[int, int] = (0, 0)  # (size, mtime_ns): a changed file is reloaded on rescan

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def adapter(self) -> str:
        return f"style_{self.info.name}"

    def apply_to(self, prompt: str) -> str:
        """The prompt with the style's prefix, trigger words and suffix around it."""
        parts = [self.prompt_prefix, *self.trigger_words, prompt, self.prompt_suffix]
        return ", ".join(p.strip() for p in parts if p.strip())


# ---------------------------------------------------------------- names and paths


def check_style_name(name: str) -> None:
    if not STYLE_NAME.fullmatch(name):
        raise LoraRefused(
            f"Style name {name!r} is not allowed: use 1-32 lowercase letters, digits, '-' or '_'."
        )


def style_dir(lora_dir: Path, name: str) -> Path:
    """The folder of style ``name``, refusing names or symlinks that lead out of ``lora_dir``."""
    check_style_name(name)
    root = lora_dir.resolve()
    folder = (root / name).resolve()
    if folder.parent != root:
        raise LoraRefused(f"Style {name!r} points outside the LoRA folder; refused.")
    return folder


def _single_safetensors(folder: Path, root: Path) -> Path:
    files = sorted(folder.glob("*.safetensors"))
    if len(files) != 1:
        raise LoraRefused(
            f"{folder.name}: expected exactly one .safetensors file, found {len(files)}."
        )
    path = files[0].resolve()
    if not path.is_relative_to(root):
        raise LoraRefused(f"{folder.name}: {files[0].name} links outside the LoRA folder; refused.")
    return path


# ---------------------------------------------------------------- file checks


def read_header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Tensor name → (dtype, shape) from a safetensors header, without reading any tensor.

    Refuses anything that is not a complete safetensors file: pickles (``.bin``/``.pt``, even
    renamed), random bytes, and files cut short by an interrupted download.
    """
    if path.suffix != ".safetensors":
        raise LoraRefused(f"{path.name}: only .safetensors files are loaded (never pickle).")
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise LoraRefused(f"{path.name}: file is empty or truncated.")
        (n,) = struct.unpack("<Q", head)
        if n > min(size - 8, _MAX_HEADER) or n < 2:
            raise LoraRefused(
                f"{path.name}: not a safetensors file (a pickle or corrupt); refused."
            )
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise LoraRefused(
            f"{path.name}: not a safetensors file (a pickle or corrupt); refused."
        ) from None
    if not isinstance(header, dict):
        raise LoraRefused(f"{path.name}: corrupt safetensors header.")
    return _tensors_in(header, path.name, size - 8 - n)


def _tensors_in(
    header: dict[str, Any], fname: str, data_len: int
) -> dict[str, tuple[str, tuple[int, ...]]]:
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    end = 0
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        try:
            dtype, shape, (start, stop) = (
                entry["dtype"],
                tuple(entry["shape"]),
                entry["data_offsets"],
            )
        except (KeyError, TypeError, ValueError):
            raise LoraRefused(f"{fname}: corrupt safetensors header.") from None
        out[key] = (str(dtype), tuple(int(d) for d in shape))
        end = max(end, int(stop), int(start))
    if end != data_len:
        raise LoraRefused(
            f"{fname}: truncated or corrupt (data is {data_len} bytes, header says {end})."
        )
    return out


_PREFIXES = ("transformer.", "diffusion_model.")
_SUFFIXES = {
    ".lora_A.weight": "A",
    ".lora_B.weight": "B",
    ".lora_down.weight": "A",
    ".lora_up.weight": "B",
    ".alpha": "alpha",
}


def split_key(key: str) -> tuple[str, str]:
    """``transformer.x.lora_A.weight`` / ``diffusion_model.x.lora_down.weight`` → (x, "A")."""
    prefix = next((p for p in _PREFIXES if key.startswith(p)), None)
    suffix = next((s for s in _SUFFIXES if key.endswith(s)), None)
    if prefix is None or suffix is None:
        raise LoraRefused(
            f"Unrecognised LoRA key {key!r}: expected diffusers (transformer.*.lora_A/B) or "
            "kohya (diffusion_model.*.lora_down/up/alpha) layout for Qwen-Image."
        )
    return key[len(prefix) : -len(suffix)], _SUFFIXES[suffix]


def check_against(
    tensors: dict[str, tuple[str, tuple[int, ...]]], linears: LinearShapes, fname: str
) -> None:
    """Every key must target a Linear of this transformer, with shapes that fit it."""
    if not tensors:
        raise LoraRefused(f"{fname}: contains no tensors.")
    for key, (_dtype, shape) in tensors.items():
        module, part = split_key(key)
        if module not in linears:
            raise LoraRefused(
                f"{fname}: targets {module!r}, which this model does not have "
                "(a LoRA for another base model?); refused."
            )
        if part == "alpha":
            continue
        out_f, in_f = linears[module]
        ok = len(shape) == 2 and (shape[1] == in_f if part == "A" else shape[0] == out_f)
        if not ok:
            raise LoraRefused(
                f"{fname}: {key} has shape {list(shape)}, which does not fit {module} "
                f"({in_f}→{out_f}); a LoRA for another base model? Refused."
            )


def check_lora_file(path: Path, linears: LinearShapes) -> None:
    check_against(read_header(path), linears, path.name)


def load_lora_tensors(path: Path, linears: LinearShapes) -> dict[str, Any]:
    """Check, then read the tensors ourselves so diffusers never falls back to a pickle."""
    from safetensors.torch import load_file

    check_lora_file(path, linears)
    try:
        return dict(load_file(str(path)))
    except Exception as exc:  # safetensors raises its own error types for corrupt data
        raise LoraRefused(f"{path.name}: could not be read ({exc}).") from None


def linear_shapes(transformer: Any) -> LinearShapes:
    import torch

    return {
        name: (m.out_features, m.in_features)
        for name, m in transformer.named_modules()
        if isinstance(m, torch.nn.Linear)
    }


# ---------------------------------------------------------------- manifests and scanning


def read_style(lora_dir: Path, name: str, linears: LinearShapes) -> Style:
    folder = style_dir(lora_dir, name)
    lora = _single_safetensors(folder, lora_dir.resolve())
    check_lora_file(lora, linears)
    try:
        m = tomllib.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LoraRefused(f"{name}: unreadable {MANIFEST} ({exc}).") from None
    preview = m.get("preview")
    preview_path = folder / str(preview) if preview else None
    info = StyleInfo(
        name=name,
        display_name=str(m.get("name_en", name)),
        display_name_zh=str(m.get("name_zh", m.get("name_en", name))),
        description=str(m.get("description", "")),
        strength=float(m.get("strength", 1.0)),
        preview_path=str(preview_path) if preview_path and preview_path.is_file() else None,
        nsfw=m.get("nsfw", False) is True,
    )
    if not 0.0 <= info.strength <= 2.0:
        raise LoraRefused(f"{name}: strength {info.strength} is outside 0..2.")
    stat = lora.stat()
    return Style(
        info=info,
        lora_path=lora,
        prompt_prefix=str(m.get("prompt_prefix", "")),
        prompt_suffix=str(m.get("prompt_suffix", "")),
        trigger_words=tuple(str(w) for w in m.get("trigger_words", [])),
        file_id=(stat.st_size, stat.st_mtime_ns),
    )


def scan_styles(lora_dir: Path, linears: LinearShapes) -> tuple[dict[str, Style], dict[str, str]]:
    """All usable styles, and the refused folders with the reason for each."""
    styles: dict[str, Style] = {}
    refused: dict[str, str] = {}
    if not lora_dir.is_dir():
        return styles, refused
    for folder in sorted(lora_dir.iterdir()):
        if folder.name == TURBO_DIR or not (folder / MANIFEST).exists():
            continue
        try:
            styles[folder.name] = read_style(lora_dir, folder.name, linears)
        except (LoraRefused, OSError) as exc:
            refused[folder.name] = str(exc)
            log.warning("Style %r refused: %s", folder.name, exc)
    return styles, refused


# ---------------------------------------------------------------- resident adapters


class StyleLibrary:
    """Installed styles plus the LRU set of those resident in the transformer as adapters."""

    def __init__(self, lora_dir: Path, linears: LinearShapes, max_resident: int) -> None:
        self.lora_dir = lora_dir
        self.linears = linears
        self.max_resident = max_resident
        self.styles: dict[str, Style] = {}
        self.refused: dict[str, str] = {}
        self._resident: OrderedDict[str, Style] = OrderedDict()
        # What set_adapters last made active; a job with the same style skips the call.
        self._active: tuple[tuple[str, ...], tuple[float, ...]] | None = None

    @property
    def resident(self) -> list[str]:
        return list(self._resident)

    def rescan(self, pipe: Any) -> None:
        """Re-read the folder; drop adapters whose style was removed or whose file changed."""
        self.styles, self.refused = scan_styles(self.lora_dir, self.linears)
        for name, old in list(self._resident.items()):
            if self.styles.get(name) != old:
                self._evict(pipe, name)

    def unload_all(self, pipe: Any) -> None:
        """Drop every resident style adapter (Turbo stays)."""
        for name in list(self._resident):
            self._evict(pipe, name)

    def activate(self, pipe: Any, style: Style | None, *, turbo: bool) -> None:
        """Make exactly Turbo (if ``turbo``) plus ``style`` active, loading it if needed."""
        names: list[str] = [TURBO_ADAPTER] if turbo else []
        weights: list[float] = [1.0] if turbo else []
        if style is not None:
            self._ensure_loaded(pipe, style)
            names.append(style.adapter)
            weights.append(style.info.strength)
        if self._active == (tuple(names), tuple(weights)):
            return
        if not names:
            if self._any_adapter(pipe):
                pipe.disable_lora()
        else:
            pipe.enable_lora()
            pipe.set_adapters(names, adapter_weights=weights)
        self._active = (tuple(names), tuple(weights))

    def _ensure_loaded(self, pipe: Any, style: Style) -> None:
        if style.name in self._resident:
            self._resident.move_to_end(style.name)
            return
        while len(self._resident) >= self.max_resident:
            self._evict(pipe, next(iter(self._resident)))
        tensors = load_lora_tensors(style.lora_path, self.linears)
        self._active = None  # loading a new adapter changes which adapters are active
        try:
            pipe.load_lora_weights(tensors, adapter_name=style.adapter)
        except Exception as exc:  # diffusers/peft raise many types for unusable state dicts
            self._drop_partial(pipe, style.adapter)
            raise LoraRefused(f"{style.name}: the LoRA could not be applied ({exc}).") from None
        self._resident[style.name] = style
        log.info("Style %r loaded as an adapter (%d resident)", style.name, len(self._resident))

    def _evict(self, pipe: Any, name: str) -> None:
        style = self._resident.pop(name)
        self._active = None
        pipe.delete_adapters(style.adapter)
        log.info("Style %r unloaded", name)

    @staticmethod
    def _any_adapter(pipe: Any) -> bool:
        return bool(pipe.get_list_adapters())

    @staticmethod
    def _drop_partial(pipe: Any, adapter: str) -> None:
        if any(adapter in v for v in pipe.get_list_adapters().values()):
            pipe.delete_adapters(adapter)
