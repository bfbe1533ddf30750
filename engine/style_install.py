"""``turbobot styles add``: install a style LoRA as ``<lora dir>/<name>/`` with its manifest.

The file is checked the way a scan checks it (a real safetensors file whose keys and shapes fit
this model's transformer, read from the model's config without loading any weight), copied
into a hidden folder, then moved into place in one rename, and read back with the scanner's own
rules. A running bot offers it after a rescan (``SIGHUP``), without reloading the model.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from bot.slices import EngineSettings
from engine.loading import ensure_demo_loras, meta_transformer
from engine.styles import (
    MANIFEST,
    TURBO_DIR,
    LinearShapes,
    LoraRefused,
    Style,
    check_lora_file,
    check_style_name,
    linear_shapes,
    read_style,
    style_dir,
)


@dataclass(frozen=True, slots=True)
class NewStyle:
    """What ``style.toml`` says about the new style."""

    name: str
    strength: float = 1.0
    prompt_prefix: str = ""
    prompt_suffix: str = ""
    trigger_words: tuple[str, ...] = ()
    display_name: str | None = None
    description: str = ""
    nsfw: bool = False

    def manifest(self, lora_file: str) -> str:
        # JSON strings are valid TOML basic strings (same escapes), so no TOML writer is needed.
        lines = {
            "name_en": json.dumps(self.display_name or self.name),
            "description": json.dumps(self.description),
            "strength": repr(float(self.strength)),
            "prompt_prefix": json.dumps(self.prompt_prefix),
            "prompt_suffix": json.dumps(self.prompt_suffix),
            "trigger_words": json.dumps(list(self.trigger_words), ensure_ascii=False),
            "nsfw": "true" if self.nsfw else "false",
        }
        body = "\n".join(f"{key} = {value}" for key, value in lines.items())
        return f"# written by `turbobot styles add` from {json.dumps(lora_file)}\n{body}\n"


def install_style(lora_dir: Path, source: Path, new: NewStyle, linears: LinearShapes) -> Style:
    """Check ``source`` and install it as style ``new.name``; the installed style."""
    check_style_name(new.name)
    if new.name == TURBO_DIR:
        raise LoraRefused(f"{TURBO_DIR!r} is the Turbo LoRA's folder, not a style name.")
    if not 0.0 <= new.strength <= 2.0:
        raise LoraRefused(f"strength {new.strength:g} is outside 0..2.")
    if not source.is_file():
        raise LoraRefused(f"{source}: no such file.")
    check_lora_file(source, linears)  # .safetensors only, keys and shapes fit this model
    lora_dir.mkdir(parents=True, exist_ok=True)
    target = style_dir(lora_dir, new.name)
    if target.exists():
        raise LoraRefused(f"style {new.name!r} already exists in {lora_dir}; remove it first.")
    staging = lora_dir / f".{new.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        shutil.copyfile(source, staging / f"{new.name}.safetensors")
        (staging / MANIFEST).write_text(new.manifest(source.name), encoding="utf-8")
        staging.rename(target)  # the scanner never sees a half-written style
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    try:
        return read_style(lora_dir, new.name, linears)
    except LoraRefused:
        shutil.rmtree(target, ignore_errors=True)
        raise


def configured_linears(settings: EngineSettings) -> LinearShapes:
    """The transformer's Linear shapes from the configured model's config (meta tensors only)."""
    linears = linear_shapes(meta_transformer(settings))
    ensure_demo_loras(settings, linears)
    return linears
