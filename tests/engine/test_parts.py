"""The engine's smaller parts: schedule, tiny model, decode guard, memory profiles, JPEG."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers.pipelines.qwenimage.pipeline_qwenimage import calculate_shift
from PIL import Image, JpegImagePlugin

from bot.domain import ASPECTS
from bot.errors import GenerationFailed
from engine import memory
from engine.executors import run_with_oom_retry
from engine.jpeg import encode_jpeg
from engine.loading import turbo_scheduler
from engine.pipeline import Engine, decode_checked, decode_latents
from engine.schedule import TurboSchedule, TurboScheduleInvalid, read_schedule
from engine.tiny import TEMPLATE_DROP, TEMPLATE_PREFIX, build_tiny_pipeline


def sigmas_at(scheduler: object, image_tokens: int, steps: int) -> list[float]:
    cfg = scheduler.config  # type: ignore[attr-defined]
    mu = calculate_shift(
        image_tokens,
        cfg.base_image_seq_len,
        cfg.max_image_seq_len,
        cfg.base_shift,
        cfg.max_shift,
    )
    scheduler.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), mu=mu)  # type: ignore[attr-defined]
    return [round(float(s), 3) for s in scheduler.sigmas]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("preset", "expected"),
    [("wuli-art", [1.0, 0.882, 0.714, 0.455, 0.0]), ("lightning", [1.0, 0.9, 0.75, 0.5, 0.0])],
)
def test_turbo_schedules_at_4096_tokens_and_4_steps(
    tmp_path: Path, preset: str, expected: list[float]
) -> None:
    (tmp_path / "turbo.toml").write_text(f'preset = "{preset}"\nsteps = 4\n', encoding="utf-8")
    schedule = read_schedule(tmp_path)
    for aspect in ASPECTS.values():
        tokens = (aspect.width // 16) * (aspect.height // 16)
        for steps in (4, 8):
            print(
                preset, aspect.name, tokens, steps, sigmas_at(schedule.scheduler(), tokens, steps)
            )
    assert sigmas_at(schedule.scheduler(), 4096, 4) == expected


def test_default_turbo_schedule_is_wuli_art_and_ignores_image_size() -> None:
    assert read_schedule(None) == TurboSchedule()
    assert sigmas_at(turbo_scheduler(), 4096, 4) == [1.0, 0.882, 0.714, 0.455, 0.0]
    assert sigmas_at(turbo_scheduler(), 256, 4) == sigmas_at(turbo_scheduler(), 6889, 4)


def test_shipped_turbo_toml_is_the_default_recipe() -> None:
    shipped = read_schedule(Path(__file__).parents[2] / "loras" / "turbo")
    assert (shipped.mu, shipped.steps) == (TurboSchedule().mu, 4)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('preset = "fast"', "preset"),
        ("mu = 9.0", "mu"),
        ('steps = "4"', "steps"),
        ("shift = 3", "shift"),
    ],
)
def test_bad_turbo_toml_is_one_clear_error(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "turbo.toml").write_text(text, encoding="utf-8")
    with pytest.raises(TurboScheduleInvalid, match=match):
        read_schedule(tmp_path)


def test_turbo_toml_mu_overrides_the_preset(tmp_path: Path) -> None:
    (tmp_path / "turbo.toml").write_text("mu = 1.0\nsteps = 8\n", encoding="utf-8")
    s = read_schedule(tmp_path)
    assert (s.mu, s.steps) == (1.0, 8)


def test_base_schedule_is_the_models_own(engine: Engine) -> None:
    assert sigmas_at(engine.base_scheduler, 4096, 4) == [1.0, 0.767, 0.456, 0.02, 0.0]


def test_template_prefix_is_exactly_the_dropped_tokens(engine: Engine) -> None:
    assert len(engine.pipe.tokenizer(TEMPLATE_PREFIX).input_ids) == TEMPLATE_DROP


def test_rebuilt_tiny_model_is_identical(engine: Engine) -> None:
    rebuilt = build_tiny_pipeline().transformer.to(torch.bfloat16).state_dict()
    loaded = engine.pipe.transformer.state_dict()
    base = {k.replace(".base_layer", ""): v for k, v in loaded.items() if "lora_" not in k}
    assert rebuilt.keys() == base.keys()
    assert all(torch.equal(rebuilt[k], base[k]) for k in rebuilt)


def test_decode_guard_retries_in_fp32() -> None:
    calls: list[torch.dtype] = []

    def decode(dtype: torch.dtype) -> torch.Tensor:
        calls.append(dtype)
        return torch.full((1, 3, 4, 4), float("nan") if dtype == torch.bfloat16 else 0.5)

    assert float(decode_checked(decode).max()) == 0.5
    assert calls == [torch.bfloat16, torch.float32]


def test_decode_guard_fails_on_black_twice() -> None:
    with pytest.raises(GenerationFailed, match="black or broken"):
        decode_checked(lambda dtype: torch.full((1, 3, 4, 4), -1.0))


def test_nan_latents_never_reach_a_user(engine: Engine) -> None:
    latents = torch.full((1, 16, 64), float("nan"), dtype=torch.bfloat16)  # 64x64 → 4x4 tokens
    with pytest.raises(GenerationFailed):
        decode_checked(lambda dt: decode_latents(engine.pipe, latents, 64, 64, dt))
    assert engine.pipe.vae.dtype == torch.bfloat16  # the fp32 retry casts back


def test_real_decode_passes_the_guard(engine: Engine) -> None:
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 16, 64, generator=gen).to(torch.bfloat16)
    image = decode_checked(lambda dt: decode_latents(engine.pipe, latents, 64, 64, dt))
    assert image.shape == (1, 3, 64, 64)


def test_oom_retry_runs_after_oom_then_succeeds() -> None:
    events: list[str] = []

    def work() -> str:
        events.append("work")
        if events.count("work") == 1:
            raise torch.cuda.OutOfMemoryError("out of memory")
        return "ok"

    assert run_with_oom_retry(work, lambda: events.append("freed")) == "ok"
    assert events == ["work", "freed", "work"]


def test_oom_retry_gives_up_after_one_retry() -> None:
    def work() -> str:
        raise torch.cuda.OutOfMemoryError("out of memory")

    with pytest.raises(GenerationFailed, match="ran out of memory"):
        run_with_oom_retry(work, lambda: None)


@pytest.mark.parametrize(
    ("requested", "cuda", "free", "expected"),
    [
        ("auto", False, 0.0, "cpu"),
        ("full", False, 0.0, "cpu"),
        ("auto", True, 79.0, "full"),
        ("auto", True, 60.0, "full"),
        ("auto", True, 45.0, "balanced"),
        ("auto", True, 39.4, "low"),  # an A100-40: balanced needs the bf16 transformer + LoRAs
        ("auto", True, 30.0, "low"),
        ("auto", True, 23.5, "low"),
        ("low", True, 79.0, "low"),
        ("cpu", True, 79.0, "cpu"),
    ],
)
def test_profile_choice(requested: str, cuda: bool, free: float, expected: str) -> None:
    got = memory.choose_profile(  # a rank-64 Turbo (1.18 GB) as on a real install
        requested,  # type: ignore[arg-type]
        cuda=cuda,
        free_vram_gb=free,
        loras_bytes=1_180_000_000,
    )
    assert got == expected


def test_lower_profiles_step_down_then_stop() -> None:
    assert memory.lower_profile("full") == "balanced"
    assert memory.lower_profile("balanced") == "low"
    assert memory.lower_profile("low") is None
    assert memory.lower_profile("cpu") is None


def test_alloc_conf_is_set_but_never_overrides_the_user() -> None:
    env: dict[str, str] = {}
    memory.set_alloc_conf(env)
    assert env == {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}
    mine = {"PYTORCH_CUDA_ALLOC_CONF": "max_split_size_mb:128"}
    memory.set_alloc_conf(mine)
    assert mine["PYTORCH_CUDA_ALLOC_CONF"] == "max_split_size_mb:128"


def test_worker_sets_the_alloc_conf_before_asking_for_the_gpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.entry.worker import gpu_name

    monkeypatch.delenv("PYTORCH_CUDA_ALLOC_CONF", raising=False)
    assert not torch.cuda.is_initialized()
    gpu_name()  # on a GPU box this starts CUDA: the setting must already be there
    assert os.environ["PYTORCH_CUDA_ALLOC_CONF"] == memory.ALLOC_CONF


def test_loading_set_the_alloc_conf_in_this_process(engine: Engine) -> None:
    assert "PYTORCH_CUDA_ALLOC_CONF" in os.environ
    assert engine.profile == "cpu"


def test_cpu_profile_keeps_the_pipeline_on_cpu(engine: Engine) -> None:
    memory.apply_profile(engine.pipe, "cpu")
    assert engine.pipe.transformer.device.type == "cpu"


def test_jpeg_is_420_at_the_requested_quality_and_deterministic() -> None:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))
    data = encode_jpeg(image, 95)
    assert data == encode_jpeg(image, 95)
    assert len(encode_jpeg(image, 60)) < len(data)
    with Image.open(io.BytesIO(data)) as im:
        assert isinstance(im, JpegImagePlugin.JpegImageFile)
        assert im.size == (128, 96)
        assert JpegImagePlugin.get_sampling(im) == 2  # 4:2:0


def test_jpeg_accepts_rgba() -> None:
    data = encode_jpeg(Image.new("RGBA", (32, 16), (10, 20, 30, 128)), 90)
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == "RGB"
