"""One LoRA normaliser: every real Qwen-Image key layout → one canonical form, checked.

Layouts seen in real files (``<m>`` is a module name such as ``transformer_blocks.7.attn.to_q``):

* ``transformer.<m>.lora_A/B.weight`` (+ optional ``transformer.<m>.alpha``): diffusers, ai-toolkit
* ``<m>.lora_A/B.weight``: Qwen-Image-Lightning
* ``<m>.lora_down/up.weight`` + ``<m>.alpha``: bare kohya
* ``lora_unet_<m with _ for .>.lora_down/up.weight`` + ``.alpha``: kohya, musubi-tuner
* ``<m>.lora_A/B.default.weight``: DiffSynth-Studio (the Wuli-Art examples)
* ``diffusion_model.<m>.lora_down/up.weight`` + ``.alpha``: ComfyUI
* ``base_model.model.<m>.lora_A/B.weight``: a bare peft save

Canonical: ``<m>.lora_A.weight`` (rank x in) and ``<m>.lora_B.weight`` (out x rank) with the
alpha folded into B (``B * alpha / rank``), so no alpha keys remain and any loader that assumes
alpha = rank computes exactly what the file means. Every key must map to a Linear of *this*
transformer with fitting shapes, A and B must pair with one rank: a LoRA may target a subset of
the Linears, but nothing in it may be left over or unmatched. Anything else is refused with the
keys that did not match, never loaded half-way.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

LinearShapes = dict[str, tuple[int, int]]
"""Module name (as in ``transformer.named_modules()``) → (out_features, in_features)."""
Header = dict[str, tuple[str, tuple[int, ...]]]
"""Tensor name → (dtype, shape), as :func:`engine.styles.read_header` returns it."""

_PREFIXES = ("transformer.", "diffusion_model.", "base_model.model.", "lora_unet_")
# suffix → (part, the family of names it belongs to); longest first so ".default." wins
_SUFFIXES = {
    ".lora_A.default.weight": ("A", "lora_A/B.default"),
    ".lora_B.default.weight": ("B", "lora_A/B.default"),
    ".lora_A.weight": ("A", "lora_A/B"),
    ".lora_B.weight": ("B", "lora_A/B"),
    ".lora_down.weight": ("A", "lora_down/up"),
    ".lora_up.weight": ("B", "lora_down/up"),
    ".alpha": ("alpha", "alpha"),
}
_SHOW = 3  # how many offending keys a refusal names


class LoraRefused(Exception):
    """A LoRA file or style folder that must not be loaded. ``str()`` says why in English, with
    the technical detail (the operator's log and CLI); ``key`` and ``params`` say it in the
    catalogue's words (``styles.refused.*``), for an admin who asked for a rescan."""

    def __init__(self, text: str, key: str = "styles.refused.unusable", /, **params: str) -> None:
        super().__init__(text)
        self.key = key
        self.params = params


@dataclass(frozen=True, slots=True)
class LoraReport:
    """What a LoRA file targets, from its header alone (no tensor read).

    ``unexpected``: keys that name no Linear of this transformer (or an unknown layout);
    ``unpaired``: modules with only A or only B; ``bad_shapes``: keys whose shape does not fit
    their module. A file is loadable when all three are empty (:attr:`ok`).
    """

    layouts: tuple[str, ...]
    modules: tuple[str, ...]  # canonical module names targeted, sorted
    rank: int  # the largest rank (0 when nothing matched)
    ranks: tuple[int, ...]  # every distinct rank, sorted
    has_alpha: bool
    linears_total: int  # Linears in the transformer (a LoRA may target a subset)
    unexpected: tuple[str, ...] = ()
    unpaired: tuple[str, ...] = ()
    bad_shapes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return bool(self.modules) and not (self.unexpected or self.unpaired or self.bad_shapes)

    def problem(self) -> str | None:
        """One sentence saying what did not match, or None when the file is loadable."""
        if self.unexpected:
            return (
                f"{len(self.unexpected)} key(s) match no layer of this Qwen-Image transformer "
                f"(a LoRA for another base model, or an unknown layout): {_few(self.unexpected)}"
            )
        if self.bad_shapes:
            return (
                f"{len(self.bad_shapes)} tensor(s) do not fit their layer's size "
                f"(a LoRA for another base model?): {_few(self.bad_shapes)}"
            )
        if self.unpaired:
            return f"{len(self.unpaired)} layer(s) lack lora_A or lora_B: {_few(self.unpaired)}"
        if not self.modules:
            return "no LoRA tensors in the file"
        return None


def _few(items: tuple[str, ...]) -> str:
    more = f" (and {len(items) - _SHOW} more)" if len(items) > _SHOW else ""
    return ", ".join(items[:_SHOW]) + more


# ---------------------------------------------------------------- key mapping


def underscore_index(linears: LinearShapes) -> dict[str, str]:
    """kohya's ``transformer_blocks_7_attn_to_out_0`` → ``transformer_blocks.7.attn.to_out.0``.

    Built from the transformer's real module names; a name two modules share is left out
    (it could not be mapped back unambiguously, so a key using it is refused).
    """
    index: dict[str, str] = {}
    seen: set[str] = set()
    for name in linears:
        flat = name.replace(".", "_")
        if flat in seen:
            index.pop(flat, None)
        else:
            index[flat] = name
            seen.add(flat)
    return index


def map_key(key: str, linears: LinearShapes, flat: dict[str, str]) -> tuple[str, str, str] | None:
    """``key`` → (module, part "A"|"B"|"alpha", layout), or None when it names no Linear here."""
    suffix = next((s for s in _SUFFIXES if key.endswith(s)), None)
    if suffix is None:
        return None
    stem = key[: -len(suffix)]
    prefix = next((p for p in _PREFIXES if stem.startswith(p)), "")
    module = stem[len(prefix) :]
    if prefix == "lora_unet_":
        module = flat.get(module, "")
    if module not in linears:
        return None
    part, family = _SUFFIXES[suffix]
    return module, part, f"{prefix}<m>.{family}"


def _shape_fits(part: str, shape: tuple[int, ...], out_f: int, in_f: int) -> bool:
    if part == "alpha":
        return len(shape) == 0 or shape == (1,)
    if len(shape) != 2 or min(shape) < 1:
        return False
    return shape[1] == in_f if part == "A" else shape[0] == out_f


def inspect_header(header: Header, linears: LinearShapes) -> LoraReport:
    """Map every key of a safetensors header onto ``linears``; never reads a tensor.

    This is the one check both the loader and ``turbobot doctor`` use.
    """
    flat = underscore_index(linears)
    parts: dict[str, dict[str, tuple[int, ...]]] = defaultdict(dict)
    unexpected: list[str] = []
    bad: list[str] = []
    layouts: set[str] = set()
    for key, (_dtype, shape) in header.items():
        mapped = map_key(key, linears, flat)
        if mapped is None:
            unexpected.append(key)
            continue
        module, part, layout = mapped
        layouts.add(layout)
        out_f, in_f = linears[module]
        if part in parts[module] or not _shape_fits(part, shape, out_f, in_f):
            bad.append(key)  # a duplicate (two layouts for one module) counts as not fitting
            continue
        parts[module][part] = shape
    unpaired, ranks = _pairs(parts, bad)
    return LoraReport(
        layouts=tuple(sorted(layouts)),
        modules=tuple(sorted(m for m in parts if m not in unpaired)),
        rank=max(ranks, default=0),
        ranks=tuple(sorted(set(ranks))),
        has_alpha=any("alpha" in p for p in parts.values()),
        linears_total=len(linears),
        unexpected=tuple(sorted(unexpected)),
        unpaired=tuple(sorted(unpaired)),
        bad_shapes=tuple(sorted(bad)),
    )


def _pairs(
    parts: dict[str, dict[str, tuple[int, ...]]], bad: list[str]
) -> tuple[list[str], list[int]]:
    unpaired: list[str] = []
    ranks: list[int] = []
    for module, p in parts.items():
        if "A" not in p or "B" not in p:
            unpaired.append(module)
        elif p["A"][0] != p["B"][1]:
            bad.append(f"{module} (lora_A rank {p['A'][0]} != lora_B rank {p['B'][1]})")
            unpaired.append(module)
        else:
            ranks.append(p["A"][0])
    return unpaired, ranks


def check_header(header: Header, linears: LinearShapes, fname: str) -> LoraReport:
    """:func:`inspect_header`, refusing the file with a clear reason unless it is loadable."""
    report = inspect_header(header, linears)
    problem = report.problem()
    if problem is not None:
        raise LoraRefused(
            f"{fname}: {problem}; refused.",
            "styles.refused.wrong_model",
            file=fname,
            detail=problem,
        )
    return report


# ---------------------------------------------------------------- tensors


def header_of(tensors: dict[str, Any]) -> Header:
    return {k: (str(v.dtype), tuple(v.shape)) for k, v in tensors.items()}


def normalise(tensors: dict[str, Any], linears: LinearShapes, fname: str) -> dict[str, Any]:
    """Check ``tensors`` and return the canonical dict (alpha folded into B, bf16 stays bf16)."""
    check_header(header_of(tensors), linears, fname)
    flat = underscore_index(linears)
    grouped: dict[str, dict[str, Any]] = defaultdict(dict)
    for key, value in tensors.items():
        mapped = map_key(key, linears, flat)
        if mapped is not None:  # check_header refused every unmapped key already
            module, part, _ = mapped
            grouped[module][part] = value
    out: dict[str, Any] = {}
    for module, p in sorted(grouped.items()):
        a, b = p["A"], p["B"]
        if "alpha" in p:
            scale = float(p["alpha"].float().reshape(-1)[0]) / a.shape[0]
            b = (b.float() * scale).to(b.dtype)
        out[f"{module}.lora_A.weight"] = a
        out[f"{module}.lora_B.weight"] = b
    return out


def for_diffusers(canonical: dict[str, Any]) -> dict[str, Any]:
    """The canonical dict with the ``transformer.`` prefix ``load_lora_weights`` routes by."""
    return {f"transformer.{k}": v for k, v in canonical.items()}


def modules_of(canonical: dict[str, Any]) -> list[str]:
    return sorted({k.rsplit(".", 2)[0] for k in canonical})
