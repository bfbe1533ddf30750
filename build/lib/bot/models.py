"""The weights turbobot runs on, named in one place (``turbobot download`` and the docs use these).

The Turbo LoRA's repository publishes several versions side by side; the recommended one is the
latest 4-step bf16 file. ``turbobot download --turbo-file`` picks another, ``--turbo-repo``
another repository (e.g. a mirror).
"""

from __future__ import annotations

from typing import Final

BASE_MODEL_REPO: Final = "Qwen/Qwen-Image-2512"
TURBO_LORA_REPO: Final = "Wuli-art/Qwen-Image-2512-Turbo-LoRA"
TURBO_LORA_FILE: Final = "Wuli-Qwen-Image-2512-Turbo-LoRA-4steps-V3.0-bf16.safetensors"
# Files of the base repository the diffusers pipeline needs (the rest are images and docs).
BASE_MODEL_PATTERNS: Final = (
    "model_index.json",
    "scheduler/*",
    "text_encoder/*",
    "tokenizer/*",
    "transformer/*",
    "vae/*",
)
