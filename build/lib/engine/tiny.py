"""A tiny, randomly initialised Qwen-Image pipeline, built offline and deterministically.

It has the real structure (8x VAE, 16 latent channels, 2x2 patches, in_channels 64, a Qwen2.5-VL
text encoder and a byte-level BPE tokenizer) at a few megabytes, is saved with ``save_pretrained``
and loaded through the same ``QwenImagePipeline.from_pretrained`` call as the real weights. It
draws noise. Demo LoRAs (a "turbo" one and three styles) are built next to it so a fresh machine
has styles to switch.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

log = logging.getLogger(__name__)

SEED = 20250101
# Bump when the tiny structure changes, so an old build on disk is replaced.
TINY_VERSION = "2"
_STAMP = "turbobot-tiny-version"

# The prefix of QwenImagePipeline's prompt template: the pipeline drops the first 34 hidden
# states (prompt_template_encode_start_idx), so this must tokenize to exactly 34 tokens.
TEMPLATE_PREFIX = (
    "<|im_start|>system\nDescribe the image by detailing the color, shape, size, texture, "
    "quantity, text, spatial relationships of the objects and background:<|im_end|>\n"
    "<|im_start|>user\n"
)
TEMPLATE_DROP = 34
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
_CORPUS = (
    TEMPLATE_PREFIX.replace("<|im_start|>", "\n").replace("<|im_end|>", "\n")
    + "\nassistant\n a cat on a red sofa, watercolor painting of a fox in the snow, neon city "
    "at night, ink drawing of mountains, portrait photo of an old man, 一只猫 🐱 spaceship"
)

# Real Qwen-Image base scheduler config (also what a base-only run uses).
BASE_SCHEDULER: dict[str, Any] = {
    "base_image_seq_len": 256,
    "base_shift": 0.5,
    "max_image_seq_len": 8192,
    "max_shift": 0.9,
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "shift_terminal": 0.02,
    "time_shift_type": "exponential",
    "use_dynamic_shifting": True,
}

TINY_DEMO_STYLES: dict[str, tuple[str, str, str, float]] = {
    # name: (English name, Chinese name, description, strength)
    "watercolor": ("Watercolor", "水彩", "Soft washes of colour (demo: random noise)", 0.8),
    "ink": ("Ink wash", "水墨", "Chinese ink painting (demo: random noise)", 1.0),
    "neon": ("Neon", "霓虹", "Glowing night colours (demo: random noise)", 0.9),
}
LORA_TARGETS = ("attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0", "attn.add_q_proj")


def ensure_tiny_model(root: Path) -> Path:
    """Build the tiny pipeline under ``root/model`` unless an up-to-date build is there."""
    model_dir = root / "model"
    stamp = model_dir / _STAMP
    if stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == TINY_VERSION:
        return model_dir
    log.warning("Building the tiny offline model in %s: it draws noise, not pictures.", model_dir)
    tmp = root / "model.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    build_tiny_pipeline().save_pretrained(tmp)
    (tmp / _STAMP).write_text(TINY_VERSION, encoding="utf-8")
    shutil.rmtree(model_dir, ignore_errors=True)
    tmp.rename(model_dir)  # a half-written build never looks complete
    return model_dir


def build_tiny_pipeline() -> Any:
    """The tiny pipeline in memory (random weights, fixed seed: every build is identical)."""
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImagePipeline,
        QwenImageTransformer2DModel,
    )

    # diffusers' model constructors carry no annotations, hence the no-untyped-call ignores.
    tokenizer = build_tiny_tokenizer()
    torch.manual_seed(SEED)
    transformer = QwenImageTransformer2DModel(  # type: ignore[no-untyped-call]
        patch_size=2,
        in_channels=64,
        out_channels=16,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        axes_dims_rope=(4, 6, 6),
    )
    torch.manual_seed(SEED + 1)
    vae = AutoencoderKLQwenImage(  # type: ignore[no-untyped-call]
        base_dim=16,
        z_dim=16,
        num_res_blocks=1,
        attn_scales=[],
        temperal_downsample=[False, True, True],
    )
    torch.manual_seed(SEED + 2)
    text_encoder = _tiny_text_encoder(len(tokenizer))
    return QwenImagePipeline(  # type: ignore[no-untyped-call]
        scheduler=FlowMatchEulerDiscreteScheduler(**BASE_SCHEDULER),  # type: ignore[no-untyped-call]
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    )


def build_tiny_tokenizer() -> Any:
    """A byte-level BPE trained on the prompt template, wrapped as a Qwen2Tokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator([_CORPUS] * 8, trainer=trainer)
    vocab: dict[str, int] = bpe.get_vocab()
    merges: Any = [
        (a, b) for a, b in json.loads(bpe.to_str())["model"]["merges"]
    ]  # pairs: BPE takes them
    tok = Qwen2Tokenizer(vocab=vocab, merges=merges)
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    n = len(tok(TEMPLATE_PREFIX).input_ids)
    if n != TEMPLATE_DROP:
        raise RuntimeError(f"tiny tokenizer gives {n} template tokens, the pipeline drops 34")
    return tok


def _tiny_text_encoder(vocab_size: int) -> Any:
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "vocab_size": vocab_size,
            "bos_token_id": None,
            "eos_token_id": 0,
            "pad_token_id": 0,
            "rope_scaling": {"mrope_section": [2, 3, 3], "rope_type": "default", "type": "default"},
            "rope_theta": 1000000.0,
        },
        vision_config={
            "depth": 1,
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_heads": 2,
            "out_hidden_size": 32,
        },
        vision_start_token_id=vocab_size - 3,
        vision_end_token_id=vocab_size - 2,
        image_token_id=vocab_size - 1,
        video_token_id=vocab_size - 1,
    )
    return Qwen2_5_VLForConditionalGeneration(config).eval()  # type: ignore[no-untyped-call]


def ensure_tiny_loras(lora_dir: Path, linears: dict[str, tuple[int, int]]) -> None:
    """Write the tiny Turbo LoRA and the demo styles unless they are already there.

    Turbo and ``ink`` use the kohya/ComfyUI key layout, the others the diffusers layout, so both
    loaders run on every fresh machine. Existing folders are left alone (users may edit them).
    """
    targets = sorted(n for n in linears if n.endswith(LORA_TARGETS))
    turbo = lora_dir / "turbo" / "tiny-turbo.safetensors"
    if not turbo.exists():
        _write_lora(turbo, tiny_lora(targets, linears, seed=SEED + 10, kohya=True))
    for i, (name, (en, zh, desc, strength)) in enumerate(TINY_DEMO_STYLES.items()):
        folder = lora_dir / name
        if folder.exists():
            continue
        tensors = tiny_lora(targets, linears, seed=SEED + 20 + i, kohya=name == "ink")
        _write_lora(folder / f"{name}.safetensors", tensors)
        manifest = (
            f'name_en = "{en}"\nname_zh = "{zh}"\ndescription = "{desc}"\n'
            f'strength = {strength}\nprompt_prefix = ""\nprompt_suffix = "{name} style"\n'
            "trigger_words = []\n"
        )
        (folder / "style.toml").write_text(manifest, encoding="utf-8")


def tiny_lora(
    targets: list[str],
    linears: dict[str, tuple[int, int]],
    *,
    seed: int,
    kohya: bool,
    rank: int = 4,
) -> dict[str, torch.Tensor]:
    """Random LoRA weights for ``targets`` (strong enough to change the tiny model's output)."""
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for name in targets:
        out_f, in_f = linears[name]
        down = torch.randn(rank, in_f, generator=gen) * 0.4
        up = torch.randn(out_f, rank, generator=gen) * 0.4
        if kohya:
            out[f"diffusion_model.{name}.lora_down.weight"] = down.to(torch.bfloat16)
            out[f"diffusion_model.{name}.lora_up.weight"] = up.to(torch.bfloat16)
            out[f"diffusion_model.{name}.alpha"] = torch.tensor(float(rank))
        else:
            out[f"transformer.{name}.lora_A.weight"] = down.to(torch.bfloat16)
            out[f"transformer.{name}.lora_B.weight"] = up.to(torch.bfloat16)
    return out


def _write_lora(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    save_file(tensors, str(tmp))
    tmp.rename(path)
