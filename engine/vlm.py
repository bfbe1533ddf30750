"""The loaded Qwen2.5-VL text encoder as a vision-language model: describe, enhance, safety check.

What the real Qwen-Image(-2512) ``text_encoder`` holds. No weight could be downloaded here; each
fact below is read from public code that loads that very folder (sources in brackets; summary in
BENCHMARKS.md, "VLM"):

* ``config.json``: ``architectures: ["Qwen2_5_VLForConditionalGeneration"]``, ``model_type
  qwen2_5_vl``, ``tie_word_embeddings: false``, vocab 152,064, hidden 3,584, 28 decoder layers;
  ``vision_config`` depth 32, ``patch_size`` 14, ``spatial_merge_size`` 2, ``temporal_patch_size``
  2; image/vision-start/vision-end token ids 151655/151652/151653 [modelscope/DiffSynth-Studio
  ``diffsynth/models/qwen_image_text_encoder.py``, which copies that config and adds an untied
  ``lm_head`` Linear(3584, 152064) beside ``Qwen2_5_VLModel``]. diffusers' ``QwenImagePipeline``
  types the component as ``Qwen2_5_VLForConditionalGeneration`` [huggingface/diffusers
  ``pipelines/qwenimage/pipeline_qwenimage.py``].
* Tensor names (``model.safetensors.index.json``): the original Qwen2.5-VL layout, ``visual.*``
  (the 32-block tower and its merger), ``model.embed_tokens`` / ``model.layers.*`` /
  ``model.norm``, and ``lm_head.weight`` [DiffSynth-Studio
  ``diffsynth/utils/state_dict_converters/qwen_image_text_encoder.py`` maps ``visual.`` →
  ``model.visual.`` and ``model.`` → ``model.language_model.`` and passes every other name, i.e.
  ``lm_head.weight``, through to that ``lm_head``; their issue #942 is about this renaming].
  transformers 5 renames that layout on load (``conversion_mapping.py``, the
  ``Qwen2VLForConditionalGeneration`` rules ``^visual`` → ``model.visual``), so a re-saved
  folder has ``model.visual.*`` / ``model.language_model.*``: we accept both. Consistent with the
  size: the class built on ``meta`` from that config has 8,292,166,656 parameters =
  16,584,333,312 bytes in bf16, the text encoder size public listings give for
  ``Qwen/Qwen-Image/text_encoder`` (without ``lm_head`` it would be 15,494,338,560).
* ``from_pretrained`` builds every module of the class whatever the files hold and **fills a
  tensor missing from the files with random values (a warning only)**: a loaded ``lm_head``
  proves nothing, so :func:`inspect_model_folder` reads the names from the index (or the
  safetensors headers) without loading a weight, and decides at every load.
* Processor and tokenizer: the text-to-image repo has no ``processor/`` (the pipeline's
  components are scheduler, vae, text_encoder, tokenizer, transformer); the Edit repos ship a
  ``Qwen2VLProcessor`` in ``processor/`` [diffusers ``pipeline_qwenimage_edit.py``]. Qwen2.5-VL's
  image preprocessing is transformers' ``Qwen2VLImageProcessor`` with its defaults (14 px
  patches, 2x2 merge, temporal patch 2, CLIP mean/std), so when no ``preprocessor_config.json``
  is in the model folder we build that from ``vision_config`` and say so. ``tokenizer/`` is a
  ``Qwen2Tokenizer`` that knows ``<|im_start|>``/``<|im_end|>`` as tokens (the pipeline's own
  prompt template uses them); no ``chat_template`` is needed: :func:`chat_ids` builds the chat
  from token ids.

Cost (see BENCHMARKS.md): an image of P pixels becomes ~P / 28² tokens (1024² → ~1,337) before
the prompt; a safety check is one forward pass (prefill only, one logit row); describe/enhance
then decode up to ``max_new_tokens`` one token at a time, each reading every weight once.

Everything here runs on the executor's single GPU thread; nothing is async.
"""

from __future__ import annotations

import json
import logging
import re
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from bot.errors import BadRequest
from bot.i18n import msg

if TYPE_CHECKING:
    from PIL import Image

    from engine.pipeline import Engine

log = logging.getLogger(__name__)

Language = Literal["en", "zh"]
Feature = Literal["describe", "enhance", "safety"]
FEATURES: tuple[Feature, ...] = ("describe", "enhance", "safety")
StopReason = Literal["eos", "length", "time"]

LM_HEAD_KEY = "lm_head.weight"
VISION_PREFIXES = ("visual.", "model.visual.")  # Qwen2.5-VL's original layout, transformers 5's
# Where a Qwen2-VL image processor config may sit in a diffusers folder (the Edit repos use
# processor/; a copied Qwen2.5-VL-7B-Instruct folder has it next to the weights).
PROCESSOR_FILES = (
    "processor/preprocessor_config.json",
    "text_encoder/preprocessor_config.json",
    "tokenizer/preprocessor_config.json",
    "preprocessor_config.json",
)
PROCESSOR_HOWTO = (
    "copy Qwen-Image-Edit's processor/ folder into the model folder "
    "(`hf download Qwen/Qwen-Image-Edit --include 'processor/*' --local-dir <model>`)"
)
# transformers' Qwen2VLImageProcessor defaults, which are Qwen2.5-VL's preprocessor_config.json.
DEFAULT_PATCH = {"patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}
MAX_HEADER_BYTES = 64 * 2**20  # a safetensors header this big is not a checkpoint we trust
MAX_IMAGE_PIXELS = 1024 * 1024  # ~1,337 image tokens for the real model
MIN_IMAGE_PIXELS = 56 * 56
MAX_NEW_TOKENS = 512
MAX_TIME_LIMIT_S = 300.0
MAX_POLICY_CHARS = 1000
MAX_PROMPT_CHARS = 2000  # bot.domain.MAX_PROMPT_CHARS: an enhanced prompt must still be valid


# ---------------------------------------------------------------- availability


@dataclass(frozen=True, slots=True)
class VlmFeatures:
    """Which VLM features this model can serve, and for each one a sentence saying why (not)."""

    describe: bool
    enhance: bool
    safety: bool
    why: Mapping[str, str] = field(default_factory=dict)

    def available(self, feature: Feature) -> bool:
        return bool(getattr(self, feature))

    def lines(self) -> list[str]:
        """One line per feature, for ``turbobot doctor`` and the log at start."""
        return [
            f"{f}: {'available' if self.available(f) else 'unavailable'} ({self.why.get(f, '')})"
            for f in FEATURES
        ]


@dataclass(frozen=True, slots=True)
class CheckpointFacts:
    """What the text encoder's files say, read without loading a weight."""

    lm_head: bool
    tied: bool
    vision: bool
    processor: str  # the config file found, "defaults", or "" (none usable)
    problem: str = ""  # files missing or unreadable


def inspect_model_folder(model_dir: Path) -> VlmFeatures:
    """Header-only availability for ``turbobot doctor``: reads configs and safetensors headers."""
    return features_from(read_checkpoint(model_dir))


def read_checkpoint(model_dir: Path) -> CheckpointFacts:
    te_dir = model_dir / "text_encoder"
    try:
        config = _read_json(te_dir / "config.json")
        names = tensor_names(te_dir)
    except (OSError, ValueError) as exc:
        return CheckpointFacts(False, False, False, "", problem=f"text_encoder unreadable: {exc}")
    text_config = config.get("text_config") or {}
    tied = bool(config.get("tie_word_embeddings", text_config.get("tie_word_embeddings", False)))
    return CheckpointFacts(
        lm_head=LM_HEAD_KEY in names,
        tied=tied,
        vision=any(n.startswith(VISION_PREFIXES) for n in names),
        processor=_find_processor(model_dir, config.get("vision_config") or {}),
    )


def tensor_names(te_dir: Path) -> set[str]:
    """Tensor names of a (sharded or single-file) safetensors checkpoint, from headers only."""
    index = te_dir / "model.safetensors.index.json"
    if index.is_file():
        return set(_read_json(index)["weight_map"])
    files = sorted(te_dir.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no safetensors files in {te_dir}")
    return {name for f in files for name in safetensors_header(f) if name != "__metadata__"}


def safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of one safetensors file (8-byte little-endian length, then JSON)."""
    with path.open("rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        if size > MAX_HEADER_BYTES:
            raise ValueError(f"{path.name}: header of {size} bytes is not plausible")
        header: dict[str, Any] = json.loads(f.read(size))
    return header


def _read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _find_processor(model_dir: Path, vision_config: Mapping[str, Any]) -> str:
    for rel in PROCESSOR_FILES:
        if (model_dir / rel).is_file():
            return rel
    if all(vision_config.get(k, v) == v for k, v in DEFAULT_PATCH.items()):
        return "defaults"
    return ""


def features_from(facts: CheckpointFacts, *, loaded_problem: str = "") -> VlmFeatures:
    """Turn file facts (and a problem seen on the loaded module) into per-feature answers."""
    head = facts.lm_head or facts.tied
    text_why = _first_problem(
        facts.problem,
        loaded_problem,
        ""
        if head
        else f"the checkpoint has no {LM_HEAD_KEY} (and untied embeddings): "
        "the text encoder cannot write text; use the full Qwen-Image text_encoder",
    )
    vision_why = _first_problem(
        text_why,
        "" if facts.vision else "the checkpoint has no vision tower (visual.* tensors)",
        "" if facts.processor else f"no image processor config: {PROCESSOR_HOWTO}",
    )
    how = "LM head " + ("tied to the embeddings" if facts.tied and not facts.lm_head else "stored")
    proc = (
        "image processor: transformers defaults matching vision_config"
        if facts.processor == "defaults"
        else f"image processor: {facts.processor}"
    )
    ok_vision = f"{how}, vision tower stored, {proc}"
    return VlmFeatures(
        describe=not vision_why,
        enhance=not text_why,
        safety=not vision_why,
        why={
            "describe": vision_why or ok_vision,
            "enhance": text_why or how,
            "safety": vision_why or ok_vision,
        },
    )


def _first_problem(*problems: str) -> str:
    return next((p for p in problems if p), "")


def check_loaded(pipe: Any, model_dir: Path) -> VlmFeatures:
    """Availability at load: the files (a missing tensor is random after loading) and the module."""
    te = getattr(pipe, "text_encoder", None)
    problem = ""
    if te is None or not hasattr(te, "generate"):
        problem = "the text encoder is not a generating Qwen2.5-VL model"
    elif not isinstance(getattr(te, "lm_head", None), torch.nn.Linear):
        problem = "the memory profile dropped the LM head (set TURBOBOT_VLM=1 to keep it)"
    elif getattr(getattr(te, "model", None), "visual", None) is None:
        problem = "the loaded text encoder has no vision tower"
    features = features_from(read_checkpoint(model_dir), loaded_problem=problem)
    for line in features.lines():
        log.info("VLM %s", line)
    return features


# ---------------------------------------------------------------- limits and stopping


class Deadline:
    """A ``transformers`` stopping criterion: stop generating once ``time_limit_s`` has passed.

    The clock is injected so tests step time instead of sleeping. ``hit`` records whether it
    stopped the generation.
    """

    def __init__(self, time_limit_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + time_limit_s
        self.hit = False

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> Any:
        done = self._clock() >= self._end
        self.hit = self.hit or done
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


@dataclass(frozen=True, slots=True)
class GeneratedText:
    text: str
    new_tokens: int
    stopped: StopReason


def check_limits(max_new_tokens: int, time_limit_s: float) -> None:
    if not 1 <= max_new_tokens <= MAX_NEW_TOKENS:
        raise BadRequest(msg("engine.max_new_tokens", high=MAX_NEW_TOKENS, value=max_new_tokens))
    if not 0 < time_limit_s <= MAX_TIME_LIMIT_S:
        raise BadRequest(
            msg("engine.time_limit", high=f"{MAX_TIME_LIMIT_S:g}", value=f"{time_limit_s:g}")
        )


FEATURE_NAMES = {
    "describe": msg("engine.feature.describe"),
    "enhance": msg("engine.feature.enhance"),
    "safety": msg("engine.feature.safety"),
}


def require(engine: Engine, feature: Feature) -> None:
    """Refuse a feature the availability check said no to. The reason names files and settings:
    it goes to the log (and ``turbobot doctor``), the user is told who can see it."""
    features = engine.vlm
    if features is None or not features.available(feature):
        why = features.why.get(feature, "") if features else "the VLM check did not run"
        log.info("VLM %s refused: %s", feature, why)
        raise BadRequest(msg("engine.feature_unavailable", feature=FEATURE_NAMES[feature]))


# ---------------------------------------------------------------- prompts

SYSTEM = "You are a helpful assistant."
DESCRIBE_ASK: dict[Language, str] = {
    "en": "Write one detailed prompt, in English, that a text-to-image model could use to "
    "recreate this image: subject, composition, colours, lighting, style, and any visible text "
    "verbatim in double quotes. Answer with the prompt only.",
    # Chinese punctuation is meant here (RUF001 flags full-width characters as look-alikes).
    "zh": "请用中文写一段详细的提示词，让文生图模型能够重现这张图片：主体、构图、颜色、光线、"  # noqa: RUF001
    "风格；图中可见的文字用双引号原样写出。只输出提示词。",  # noqa: RUF001
}
ENHANCE_SYSTEM = (
    "You rewrite short image prompts into one detailed prompt for the Qwen-Image model: describe "
    "the subject, setting, composition, colours, lighting, style and mood in natural sentences. "
    "Any text in quotes must appear in your prompt exactly as written, inside the same quotes. "
    "Answer in the language of the user's prompt, with the prompt only."
)
SAFETY_ASK = (
    "Policy: {policy}\nDoes this image violate the policy? Answer with one word: safe or unsafe."
)
SAFE, UNSAFE = "safe", "unsafe"

# Spans the user wants drawn as text: "..." “...” 「...」 『...』 (not '...': apostrophes).
QUOTED = re.compile(r'"[^"\n]+"|“[^”\n]+”|「[^」\n]+」|『[^』\n]+』')
ZH_COMMA, ZH_STOP, ZH_TEXT = "\uff0c", "\u3002", "\u6587\u5b57\uff1a"  # comma, full stop, "text:"
_CJK = re.compile(r"[\u3400-\u9fff]")


def language_of(text: str) -> Language:
    return "zh" if _CJK.search(text) else "en"


def quoted_spans(text: str) -> list[str]:
    """Quoted spans (with their quotes), in order, each once."""
    return list(dict.fromkeys(QUOTED.findall(text)))


def keep_quoted(original: str, rewritten: str) -> str:
    """``rewritten`` with every quoted span of ``original`` present verbatim (re-appended)."""
    missing = [s for s in quoted_spans(original) if s not in rewritten]
    if not missing:
        return rewritten
    zh = language_of(original) == "zh"
    joiner, label = (ZH_COMMA, ZH_TEXT) if zh else (", ", "with the text ")
    head = rewritten.rstrip().rstrip("." + ZH_STOP + "," + ZH_COMMA)
    return f"{head}{joiner}{label}{' '.join(missing)}" if head else " ".join(missing)


# ---------------------------------------------------------------- the three features


def describe(
    engine: Engine,
    image: Image.Image,
    language: Language,
    max_new_tokens: int,
    time_limit_s: float,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> GeneratedText:
    """A prompt that would recreate ``image``, written by the VLM in ``language``."""
    require(engine, "describe")
    check_limits(max_new_tokens, time_limit_s)
    deadline = Deadline(time_limit_s, clock)  # the image's preprocessing counts too
    vision = image_inputs(engine, image)
    ids = chat_ids(engine, DESCRIBE_ASK[language], image_tokens=vision.tokens)
    return generate(engine, ids, vision.tensors, max_new_tokens, deadline)


def enhance(
    engine: Engine,
    prompt: str,
    max_new_tokens: int,
    time_limit_s: float,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> GeneratedText:
    """``prompt`` rewritten in detail; quoted text kept verbatim; never empty, never too long."""
    require(engine, "enhance")
    check_limits(max_new_tokens, time_limit_s)
    ids = chat_ids(engine, prompt, system=ENHANCE_SYSTEM)
    out = generate(engine, ids, {}, max_new_tokens, Deadline(time_limit_s, clock))
    text = keep_quoted(prompt, out.text.strip()) or prompt
    if len(text) > MAX_PROMPT_CHARS:  # the quoted spans go first, so cutting keeps them
        text = keep_quoted(prompt, text[: MAX_PROMPT_CHARS // 2])[:MAX_PROMPT_CHARS]
    return GeneratedText(text=text, new_tokens=out.new_tokens, stopped=out.stopped)


@dataclass(frozen=True, slots=True)
class SafetyVerdict:
    """``label`` from comparing the next-token logits of "safe" and "unsafe" (no free text).

    ``raw`` is the margin logit(unsafe) - logit(safe) (positive: the model leans unsafe).
    """

    label: Literal["safe", "unsafe"]
    raw: float


def safety_check(
    engine: Engine, image: Image.Image, policy: str, *, threshold: float = 0.0
) -> SafetyVerdict:
    """Classify ``image`` against ``policy`` with one forward pass (prefill, one logit row)."""
    require(engine, "safety")
    policy = " ".join(policy.split())
    if not 0 < len(policy) <= MAX_POLICY_CHARS:
        raise BadRequest(msg("engine.policy_length", high=MAX_POLICY_CHARS))
    vision = image_inputs(engine, image)
    ids = chat_ids(engine, SAFETY_ASK.format(policy=policy), image_tokens=vision.tokens)
    safe_id, unsafe_id = answer_ids(engine.pipe.tokenizer)
    te = engine.pipe.text_encoder
    with torch.no_grad():
        out = te(**_model_inputs(engine, ids, vision.tensors), logits_to_keep=1)
    logits = out.logits[0, -1].float()
    margin = float(logits[unsafe_id] - logits[safe_id])
    return SafetyVerdict(label="unsafe" if margin > threshold else "safe", raw=margin)


def answer_ids(tokenizer: Any) -> tuple[int, int]:
    """First token ids of "safe" and "unsafe"; they must differ or the comparison means nothing."""
    safe, unsafe = (tokenizer(w, add_special_tokens=False).input_ids[0] for w in (SAFE, UNSAFE))
    if safe == unsafe:
        raise RuntimeError("the tokenizer starts 'safe' and 'unsafe' with the same token")
    return int(safe), int(unsafe)


# ---------------------------------------------------------------- model plumbing


@dataclass(frozen=True, slots=True)
class VisionInputs:
    tensors: dict[str, torch.Tensor]  # pixel_values, image_grid_thw
    tokens: int  # image placeholder tokens in the prompt (after the 2x2 merge)


def image_inputs(engine: Engine, image: Image.Image) -> VisionInputs:
    processor = engine.vlm_processor
    if processor is None:
        raise BadRequest(msg("engine.no_image_processor"))
    out = processor(images=[image.convert("RGB")], return_tensors="pt")
    grid = out["image_grid_thw"]
    merge = int(engine.pipe.text_encoder.config.vision_config.spatial_merge_size)
    return VisionInputs(
        tensors={"pixel_values": out["pixel_values"], "image_grid_thw": grid},
        tokens=int(grid.prod()) // (merge * merge),
    )


def build_processor(model_dir: Path, vision_config: Any, max_pixels: int = MAX_IMAGE_PIXELS) -> Any:
    """Qwen2-VL image preprocessing (PIL backend): from the folder's config or the defaults."""
    from transformers import Qwen2VLImageProcessorPil

    limits: dict[str, Any] = {
        "min_pixels": min(MIN_IMAGE_PIXELS, max_pixels),
        "max_pixels": max_pixels,
    }
    found = _find_processor(model_dir, vision_config.to_dict())
    if found and found != "defaults":
        return Qwen2VLImageProcessorPil.from_pretrained(
            str((model_dir / found).parent), local_files_only=True, **limits
        )
    return Qwen2VLImageProcessorPil(
        patch_size=vision_config.patch_size,
        merge_size=vision_config.spatial_merge_size,
        temporal_patch_size=vision_config.temporal_patch_size,
        **limits,
    )


def chat_ids(
    engine: Engine, user: str, *, system: str = SYSTEM, image_tokens: int = 0
) -> list[int]:
    """Qwen2.5-VL's chat format, built from ids: the image markers come from the model config,
    and special tokens in a user's text are dropped, so it can smuggle in neither an image
    placeholder nor a turn of its own."""
    tok = engine.pipe.tokenizer
    cfg = engine.pipe.text_encoder.config

    def text(s: str) -> list[int]:
        ids: list[int] = tok(s, add_special_tokens=False).input_ids
        return ids

    start, end = tok.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
    nl = text("\n")
    image = (
        [cfg.vision_start_token_id, *[cfg.image_token_id] * image_tokens, cfg.vision_end_token_id]
        if image_tokens
        else []
    )
    special = {*tok.all_special_ids, *_vision_ids(cfg)}
    user_ids = [i for i in text(user) if i not in special]  # no chat markup from a user
    return [
        *[start, *text("system"), *nl, *text(system), end, *nl],
        *[start, *text("user"), *nl, *image, *user_ids, end, *nl],
        *[start, *text("assistant"), *nl],
    ]


def _vision_ids(cfg: Any) -> set[int]:
    return {cfg.vision_start_token_id, cfg.vision_end_token_id, cfg.image_token_id}


def _model_inputs(
    engine: Engine, ids: list[int], vision: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    device = engine.pipe._execution_device
    te = engine.pipe.text_encoder
    inputs = {
        "input_ids": torch.tensor([ids], device=device),
        "attention_mask": torch.ones((1, len(ids)), dtype=torch.long, device=device),
    }
    if vision:
        inputs["pixel_values"] = vision["pixel_values"].to(device, te.dtype)
        inputs["image_grid_thw"] = vision["image_grid_thw"].to(device)
    return inputs


def stop_ids(tokenizer: Any, config: Any) -> list[int]:
    eos = config.text_config.eos_token_id
    ids = {*(eos if isinstance(eos, list) else [eos])} - {None}
    ids |= {tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")}
    return sorted(i for i in ids if isinstance(i, int) and i >= 0)


def generate(
    engine: Engine,
    ids: list[int],
    vision: Mapping[str, torch.Tensor],
    max_new_tokens: int,
    deadline: Deadline,
) -> GeneratedText:
    """Greedy decoding (same input, same text) bounded by tokens and by a deadline."""
    from transformers import GenerationConfig, StoppingCriteriaList

    pipe = engine.pipe
    te, tok = pipe.text_encoder, pipe.tokenizer
    eos = stop_ids(tok, te.config)
    with torch.no_grad():
        out = te.generate(
            **_model_inputs(engine, ids, vision),
            # our own config: a checkpoint's generation_config.json (sampling, temperature) must
            # not make the output random or the limits different
            generation_config=GenerationConfig(  # type: ignore[no-untyped-call]
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=eos,
                pad_token_id=eos[0],
            ),
            stopping_criteria=StoppingCriteriaList([deadline]),
        )
    new = out[0, len(ids) :].tolist()
    ended = bool(new) and new[-1] in eos
    stopped: StopReason = "eos" if ended else "time" if deadline.hit else "length"
    text = tok.decode(new, skip_special_tokens=True).strip()
    return GeneratedText(text=text, new_tokens=len(new), stopped=stopped)
