"""``TURBOBOT_MODEL=synthetic``: Qwen-Image-2512 at its real size, with random weights.

Speed and memory of the real model do not depend on the weight values, so this pipeline answers
"how fast and how big on my card?" without the 58 GB download. It is built from the real
component configs shipped in ``engine/configs/qwen_image_2512`` on the ``meta`` device, then each
parameter is created directly on the target device and filled there from a small pool of random
normals (no host copy of 54 GiB, seconds on a GPU). The tokenizer is the tiny offline one (its
template prefix is checked to be 34 tokens, as the pipeline expects); the text encoder keeps the
real vocabulary, so every id it produces is valid.

The Turbo LoRA (rank 64 over the 840 block linears, about 1.1 GiB as in the real file) and two
rank-32 styles over the same linears are generated into the data dir on first use. It draws noise.

``TURBOBOT_SYNTHETIC_LAYERS`` (default 60) cuts the depth so CPU tests can materialise the real
widths: the transformer gets that many blocks, the text encoder and the vision tower at most that
many layers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

REAL_LAYERS = 60
SEED = 20251128
LORA_RANK = 64
# The block linears a LoRA may target (all 14 per block, as the real Turbo LoRA does).
BLOCK_PREFIX = "transformer_blocks."
# Bump when the synthetic LoRA files change so old ones are rewritten.
LORA_VERSION = "2"
_STAMP = "turbobot-synthetic-version"
_POOL = 1 << 22  # 4 Mi random normals, tiled into every parameter
WARNING = (
    "TURBOBOT_MODEL=synthetic: Qwen-Image-2512 at its real size with RANDOM weights. It draws "
    "NOISE; use it to measure speed and memory. Set TURBOBOT_MODEL to a Qwen-Image-2512 "
    "diffusers folder for real images."
)

STYLE_RANK = 32  # a typical style: rank 32 over the same linears (0.55 GiB)
# name: (English name, Chinese name, strength, key layout)
SYNTHETIC_STYLES: dict[str, tuple[str, str, float, str]] = {
    "synthetic-a": ("Synthetic A", "合成甲", 0.8, "diffusers"),
    "synthetic-b": ("Synthetic B", "合成乙", 1.0, "kohya"),
}


@dataclass(frozen=True, slots=True)
class Configs:
    """The three component configs, as the real checkpoint's ``config.json`` files hold them."""

    transformer: dict[str, Any]
    vae: dict[str, Any]
    text_encoder: dict[str, Any]


def configs(layers: int = REAL_LAYERS) -> Configs:
    """The real configs, cut to ``layers`` blocks (the text encoder to at most as many)."""
    from engine.plan import read_config

    transformer = read_config("transformer") | {"num_layers": layers}
    text = read_config("text_encoder")
    text_config = text["text_config"]
    vision = text["vision_config"]
    if layers < REAL_LAYERS:
        depth = min(layers, vision["depth"])
        text_config = text_config | {
            "num_hidden_layers": min(layers, text_config["num_hidden_layers"]),
            "max_window_layers": min(layers, text_config["max_window_layers"]),
        }
        vision = vision | {
            "depth": depth,
            "fullatt_block_indexes": [i for i in vision["fullatt_block_indexes"] if i < depth],
        }
    return Configs(
        transformer=transformer,
        vae=read_config("vae"),
        text_encoder=text | {"text_config": text_config, "vision_config": vision},
    )


# ---------------------------------------------------------------- building


def build_components(layers: int = REAL_LAYERS) -> dict[str, Any]:
    """Transformer, VAE and text encoder with every parameter on ``meta`` (no memory).

    Buffers and plain tensor attributes (rotary tables) are real CPU tensors: they are small
    and are computed in the constructors, which ``meta`` would leave empty.
    """
    from diffusers import AutoencoderKLQwenImage, QwenImageTransformer2DModel
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    c = configs(layers)
    with init_meta():
        transformer = QwenImageTransformer2DModel.from_config(c.transformer)  # type: ignore[no-untyped-call]
        vae = AutoencoderKLQwenImage.from_config(c.vae)  # type: ignore[no-untyped-call]
        te_config = Qwen2_5_VLConfig(**_without_meta_keys(c.text_encoder))
        text_encoder = Qwen2_5_VLForConditionalGeneration(te_config)
    text_encoder.eval()  # type: ignore[no-untyped-call]
    return {"transformer": transformer, "vae": vae, "text_encoder": text_encoder}


@contextmanager
def init_meta() -> Iterator[None]:
    """Parameters created inside go to ``meta``; buffers stay real (see ``build_components``)."""
    from accelerate import init_empty_weights

    with init_empty_weights(include_buffers=False):
        yield


def _without_meta_keys(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in ("architectures", "model_type")}


def build_pipeline(
    layers: int = REAL_LAYERS,
    *,
    device: str | torch.device | Mapping[str, str] | None = None,
    seed: int = SEED,
) -> Any:
    """The synthetic pipeline; ``device=None`` leaves the weights on ``meta`` (shapes only).

    ``device`` may map component names to devices, so each one is created where its memory
    profile keeps it (e.g. the transformer on the GPU, the streamed text encoder in host RAM).
    """
    from diffusers import FlowMatchEulerDiscreteScheduler, QwenImagePipeline

    from engine.tiny import BASE_SCHEDULER, build_tiny_tokenizer

    parts = build_components(layers)
    if device is not None:
        for i, name in enumerate(("transformer", "text_encoder", "vae")):
            where = device.get(name, "cpu") if isinstance(device, Mapping) else device
            materialise(parts[name], torch.device(where), seed=seed + i)
    pipe: Any = QwenImagePipeline(  # type: ignore[no-untyped-call]
        scheduler=FlowMatchEulerDiscreteScheduler(**BASE_SCHEDULER),  # type: ignore[no-untyped-call]
        tokenizer=build_tiny_tokenizer(),
        **parts,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def placement(profile: str) -> dict[str, str]:
    """Where each component is created for a memory profile (see ``engine.memory``'s recipes):
    what the profile keeps on the GPU is made there; the rest, and a transformer that is cast
    to fp8 before it moves (``low``), starts in host RAM."""
    gpu = {"full": ("transformer", "text_encoder", "vae"), "balanced": ("transformer", "vae")}
    resident = gpu.get(profile, ("vae",) if profile == "low" else ())
    return {n: "cuda" if n in resident else "cpu" for n in ("transformer", "text_encoder", "vae")}


def materialise(
    module: torch.nn.Module, device: torch.device, *, seed: int, dtype: torch.dtype = torch.bfloat16
) -> None:
    """Give every ``meta`` parameter real storage on ``device``, filled with small random values.

    Matrices get normals scaled by 1/sqrt(fan-in) (activations stay O(1) through 60 blocks, so
    bf16 never overflows); 1-D gains of norms are 1 and biases small. Buffers move to ``device``
    with their own dtype. Tied parameters stay tied.
    """
    pool = _Pool(device, dtype, seed)
    done: dict[int, torch.nn.Parameter] = {}
    for mod in module.modules():
        for name, param in list(mod._parameters.items()):
            if param is None:
                continue
            if id(param) not in done:
                done[id(param)] = torch.nn.Parameter(
                    _random_like(param, name, pool, device, dtype), requires_grad=False
                )
            mod._parameters[name] = done[id(param)]
        for name, buf in list(mod._buffers.items()):
            if buf is not None:
                mod._buffers[name] = buf.to(device)


class _Pool:
    """Random normals drawn once on the CPU (the same values on every device), kept on the
    target device pre-scaled per fan-in, and tiled into each parameter by plain copies: filling
    54 GiB with fresh normals would take minutes on a CPU, and the values change neither speed
    nor memory."""

    def __init__(self, device: torch.device, dtype: torch.dtype, seed: int) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.unit = torch.randn(_POOL, generator=gen).to(device=device, dtype=dtype)
        self.scaled: dict[int, torch.Tensor] = {}

    def for_fan_in(self, fan_in: int) -> torch.Tensor:
        if fan_in not in self.scaled:
            self.scaled[fan_in] = self.unit * (1.0 / math.sqrt(max(1, fan_in)))
        return self.scaled[fan_in]


def _random_like(
    param: torch.Tensor, name: str, pool: _Pool, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    out = torch.empty(param.shape, device=device, dtype=dtype)
    if param.ndim == 1 and name == "weight":
        return out.fill_(1.0)  # norm gains
    flat = out.view(-1)
    n = flat.numel()
    source = pool.for_fan_in(n // param.shape[0] if param.ndim > 1 else 2500)  # biases: small
    start = (n * 7919) % _POOL  # a different offset per size: neighbours differ
    for at in range(0, n, _POOL):
        chunk = min(_POOL, n - at)
        first = min(chunk, _POOL - start)
        flat[at : at + first].copy_(source[start : start + first])
        flat[at + first : at + chunk].copy_(source[: chunk - first])
    return out


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------- LoRAs


def block_linears(linears: Mapping[str, tuple[int, int]]) -> list[str]:
    """The linears inside the transformer blocks (840 in the real 60-block model)."""
    return sorted(n for n in linears if n.startswith(BLOCK_PREFIX))


def lora_shapes(
    linears: Mapping[str, tuple[int, int]], *, rank: int = LORA_RANK, layout: str = "diffusers"
) -> dict[str, tuple[int, ...]]:
    """Key → shape of a rank-``rank`` LoRA over every block linear, in ``layout``."""
    out: dict[str, tuple[int, ...]] = {}
    for name in block_linears(linears):
        out_f, in_f = linears[name]
        down, up = _key_names(name, layout)
        out[down] = (rank, in_f)
        out[up] = (out_f, rank)
        if layout == "kohya":
            out[f"diffusion_model.{name}.alpha"] = ()
    return out


def _key_names(module: str, layout: str) -> tuple[str, str]:
    if layout == "kohya":
        return (
            f"diffusion_model.{module}.lora_down.weight",
            f"diffusion_model.{module}.lora_up.weight",
        )
    return f"transformer.{module}.lora_A.weight", f"transformer.{module}.lora_B.weight"


def lora_header(
    linears: Mapping[str, tuple[int, int]], *, rank: int = LORA_RANK, layout: str = "diffusers"
) -> dict[str, tuple[str, tuple[int, ...]]]:
    """The safetensors header (key → dtype, shape) the synthetic LoRA file would have."""
    return {
        k: ("F32" if not shape else "BF16", shape)
        for k, shape in lora_shapes(linears, rank=rank, layout=layout).items()
    }


def lora_bytes(linears: Mapping[str, tuple[int, int]], *, rank: int = LORA_RANK) -> int:
    """Size in bf16 of a rank-``rank`` LoRA over every block linear (≈ 1.1 GiB at 60 blocks)."""
    return 2 * sum(math.prod(s) for s in lora_shapes(linears, rank=rank).values())


def synthetic_lora(
    linears: Mapping[str, tuple[int, int]], *, seed: int, layout: str, rank: int = LORA_RANK
) -> dict[str, torch.Tensor]:
    """Random LoRA tensors (bf16) of the real shape; B is small so images stay finite."""
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for key, shape in lora_shapes(linears, rank=rank, layout=layout).items():
        if not shape:
            out[key] = torch.tensor(float(rank))
            continue
        down = key.endswith(("lora_A.weight", "lora_down.weight"))
        scale = 1.0 / math.sqrt(shape[1]) if down else 1e-2
        out[key] = (torch.randn(shape, generator=gen) * scale).to(torch.bfloat16)
    return out


def ensure_synthetic_loras(lora_dir: Path, linears: Mapping[str, tuple[int, int]]) -> None:
    """Write the synthetic Turbo LoRA and styles for this depth unless they are already there."""
    stamp = lora_dir / _STAMP
    want = f"{LORA_VERSION} {len(block_linears(linears))}"
    if stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == want:
        return
    log.warning("Writing synthetic LoRAs (random, real-shaped) to %s", lora_dir)
    turbo = synthetic_lora(linears, seed=SEED + 10, layout="kohya")
    _write_lora(lora_dir / "turbo" / "synthetic-turbo.safetensors", turbo)
    for i, (name, (en, zh, strength, layout)) in enumerate(SYNTHETIC_STYLES.items()):
        folder = lora_dir / name
        tensors = synthetic_lora(linears, seed=SEED + 20 + i, layout=layout, rank=STYLE_RANK)
        _write_lora(folder / f"{name}.safetensors", tensors)
        (folder / "style.toml").write_text(
            f'name_en = "{en}"\nname_zh = "{zh}"\n'
            'description = "Synthetic style: random weights of a real style\'s shape (noise)"\n'
            f'strength = {strength}\nprompt_suffix = "{name}"\n',
            encoding="utf-8",
        )
    stamp.write_text(want, encoding="utf-8")


def _write_lora(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    save_file(tensors, str(tmp))
    tmp.replace(path)  # a half-written file never has the .safetensors name
