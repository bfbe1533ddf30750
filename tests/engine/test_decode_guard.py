"""The NaN/black decode guard on the real render path, and the scheduler each render uses.

Faults are injected into the VAE of the real tiny pipeline (a forward hook on its decoder, or
its ``decode`` wrapped), so these tests fail if ``render`` stops going through
``decode_checked`` — the older unit tests called ``decode_checked`` directly and could not see
that. Only the public names of ``engine.pipeline`` are used: ``render``, ``decode_checked``,
``usable``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

from bot.errors import GenerationFailed
from engine.pipeline import Engine, decode_checked, render, usable
from tests.engine.conftest import no_progress, spec

Fault = Callable[[torch.Tensor], torch.Tensor | None]


@pytest.fixture
def decoder_fault(engine: Engine) -> Iterator[Callable[[Fault], list[torch.dtype]]]:
    """``install(fault)``: every VAE decoder output goes through ``fault`` (which may return a
    replacement); returns the list of dtypes the decoder ran in, in order."""
    handles: list[Any] = []

    def install(fault: Fault) -> list[torch.dtype]:
        seen: list[torch.dtype] = []

        def hook(_module: Any, _args: Any, output: torch.Tensor) -> torch.Tensor | None:
            seen.append(output.dtype)
            return fault(output)

        handles.append(engine.pipe.vae.decoder.register_forward_hook(hook))
        return seen

    yield install
    for handle in handles:
        handle.remove()


def nan_always(out: torch.Tensor) -> torch.Tensor:
    return torch.full_like(out, float("nan"))


def nan_in_bf16(out: torch.Tensor) -> torch.Tensor | None:
    return torch.full_like(out, float("nan")) if out.dtype == torch.bfloat16 else None


def black_always(out: torch.Tensor) -> torch.Tensor:
    return torch.full_like(out, -5.0)  # clamped to -1 by the VAE: black everywhere


# ----- through render -----
def test_a_decode_that_stays_nan_fails_the_job(engine: Engine, decoder_fault: Any) -> None:
    ran = decoder_fault(nan_always)
    with pytest.raises(GenerationFailed, match="black or broken"):
        render(engine, spec(), no_progress)
    assert ran[0] == torch.bfloat16
    assert ran[-1] == torch.float32  # the full-precision retry was tried first


def test_a_black_decode_fails_the_job(engine: Engine, decoder_fault: Any) -> None:
    decoder_fault(black_always)
    with pytest.raises(GenerationFailed):
        render(engine, spec(), no_progress)


def test_a_nan_bf16_decode_is_retried_in_fp32(engine: Engine, decoder_fault: Any) -> None:
    ran = decoder_fault(nan_in_bf16)
    image = render(engine, spec(), no_progress).image
    assert ran[0] == torch.bfloat16
    assert ran[-1] == torch.float32
    assert max(high for _low, high in image.getextrema()) > 0  # not the NaN turned black


@pytest.mark.parametrize("value", [float("inf"), float("-inf")], ids=["+inf", "-inf"])
def test_one_infinite_pixel_is_retried_in_fp32(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, value: float
) -> None:
    """The VAE clamps its decoder's output, so the fault goes after it: ``decode`` itself
    returns one infinite pixel in bf16."""
    vae = engine.pipe.vae
    real = vae.decode
    dtypes: list[torch.dtype] = []

    def decode(z: torch.Tensor, return_dict: bool = True) -> Any:
        (image,) = real(z, return_dict=False)
        dtypes.append(image.dtype)
        if image.dtype == torch.bfloat16:
            image = image.clone()
            image.view(-1)[image.numel() // 2] = value
        return (image,)

    monkeypatch.setattr(vae, "decode", decode)
    rendered = render(engine, spec(), no_progress)
    assert dtypes == [torch.bfloat16, torch.float32]
    assert rendered.image.size == (64, 64)


# ----- the guard's own rules -----
@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_a_single_non_finite_pixel_is_not_usable(value: float) -> None:
    image = torch.full((1, 3, 8, 8), 0.25)
    assert usable(image)
    image[0, 1, 4, 4] = value
    assert not usable(image)


def test_black_is_not_usable_and_one_lit_pixel_is() -> None:
    image = torch.full((1, 3, 8, 8), -1.0)
    assert not usable(image)
    image[0, 0, 0, 0] = 0.0
    assert usable(image)


def test_decode_checked_tries_bf16_then_fp32_then_gives_up() -> None:
    tried: list[torch.dtype] = []

    def decode(dtype: torch.dtype) -> torch.Tensor:
        tried.append(dtype)
        return torch.full((1, 3, 4, 4), float("nan"), dtype=dtype)

    with pytest.raises(GenerationFailed):
        decode_checked(decode)
    assert tried == [torch.bfloat16, torch.float32]


# ----- which scheduler a render uses, and its timesteps -----
def _timesteps_follow_sigmas(scheduler: Any, steps: int, train_steps: int) -> None:
    assert len(scheduler.timesteps) == steps
    expected = scheduler.sigmas[:-1] * train_steps
    assert torch.allclose(scheduler.timesteps.float(), expected.float(), atol=1e-3)
    assert float(scheduler.sigmas[-1]) == 0.0


def test_turbo_renders_use_the_turbo_schedule(engine: Engine) -> None:
    assert engine.has_turbo
    render(engine, spec(steps=4), no_progress)
    assert engine.pipe.scheduler is engine.turbo_scheduler
    # The LoRA's schedule counts time like the model it was trained on.
    train_steps = engine.base_scheduler.config.num_train_timesteps
    assert engine.turbo_scheduler.config.num_train_timesteps == train_steps
    _timesteps_follow_sigmas(engine.turbo_scheduler, 4, train_steps)


def test_base_renders_use_the_models_own_schedule(engine: Engine) -> None:
    render(engine, spec(steps=3), no_progress, turbo=False)
    assert engine.pipe.scheduler is engine.base_scheduler
    assert engine.pipe.scheduler is not engine.turbo_scheduler
    train_steps = engine.base_scheduler.config.num_train_timesteps
    _timesteps_follow_sigmas(engine.base_scheduler, 3, train_steps)


def test_the_two_schedules_differ_at_the_same_step_count(engine: Engine) -> None:
    render(engine, spec(steps=4), no_progress, turbo=False)
    base = engine.base_scheduler.sigmas.clone()
    render(engine, spec(steps=4), no_progress)
    turbo = engine.turbo_scheduler.sigmas.clone()
    assert base.shape == turbo.shape
    assert not torch.allclose(base, turbo)
