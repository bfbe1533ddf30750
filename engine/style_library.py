"""The styles in the transformer: LoRA adapters loaded through PEFT, and the one style **slot**.

The transformer holds exactly two LoRA adapters, ``turbo`` and one style slot sized for every
installed style (their modules, their largest rank). A switch copies the style's cached weights
into the slot in place (strength folded into B, rank zero-padded), so the module tree never
changes: ``torch.compile`` never recompiles, nothing is fused (lossy in bf16), and LoRA weights
stay bf16 whatever the base weights are stored in. Finding and checking the files:
:mod:`engine.styles`.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.domain import RefusedStyle
from engine.lora_keys import LinearShapes, LoraRefused, for_diffusers, modules_of
from engine.styles import (
    STYLE_SLOT,
    TURBO_ADAPTER,
    Style,
    load_lora_tensors,
    scan_style_folders,
)

log = logging.getLogger(__name__)


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
