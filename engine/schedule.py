"""The Turbo LoRA's sampling schedule, read from ``turbo.toml`` beside the LoRA file.

Distilled few-step LoRAs only work with the schedule they were trained with, so it lives with
the LoRA (``loras/turbo/turbo.toml``), not in the bot's settings. Default: the Wuli-Art recipe
(exponential shift mu = ln 2.5, no terminal shift); ``preset = "lightning"`` is mu = ln 3.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.errors import TurbobotError

SCHEDULE_FILE = "turbo.toml"
PRESETS: dict[str, float] = {"wuli-art": math.log(2.5), "lightning": math.log(3.0)}
DEFAULT_PRESET: Literal["wuli-art", "lightning"] = "wuli-art"


class TurboScheduleInvalid(TurbobotError):
    """``turbo.toml`` could not be used; the message says which value is wrong."""


class _TurboToml(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    preset: Literal["wuli-art", "lightning"] = DEFAULT_PRESET
    mu: float | None = Field(default=None, gt=0.0, le=3.0)
    steps: int = Field(default=4, ge=1, le=50)


@dataclass(frozen=True, slots=True)
class TurboSchedule:
    """Exponential time shift ``mu`` (the same at every image size) and the distilled steps."""

    mu: float = PRESETS[DEFAULT_PRESET]
    steps: int = 4
    source: str = f"default ({DEFAULT_PRESET})"

    def scheduler_config(self) -> dict[str, Any]:
        """FlowMatchEulerDiscreteScheduler config: base_shift == max_shift, so mu is fixed."""
        return {
            "num_train_timesteps": 1000,
            "use_dynamic_shifting": True,
            "time_shift_type": "exponential",
            "base_shift": self.mu,
            "max_shift": self.mu,
            "shift": 1.0,
            "shift_terminal": None,
            "base_image_seq_len": 256,
            "max_image_seq_len": 8192,
        }

    def scheduler(self) -> Any:
        from diffusers import FlowMatchEulerDiscreteScheduler

        return FlowMatchEulerDiscreteScheduler(**self.scheduler_config())  # type: ignore[no-untyped-call]


def read_schedule(folder: Path | None) -> TurboSchedule:
    """The schedule in ``folder/turbo.toml``; the default recipe when there is no such file."""
    if folder is None or not (folder / SCHEDULE_FILE).is_file():
        return TurboSchedule()
    path = folder / SCHEDULE_FILE
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        cfg = _TurboToml.model_validate(raw)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TurboScheduleInvalid(f"{path}: unreadable ({exc}).") from None
    except ValidationError as exc:
        why = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise TurboScheduleInvalid(f"{path}: {why}.") from None
    mu = cfg.mu if cfg.mu is not None else PRESETS[cfg.preset]
    source = f"{path} (mu {mu:.4f})" if cfg.mu is not None else f"{path} ({cfg.preset})"
    return TurboSchedule(mu=mu, steps=cfg.steps, source=source)
