"""``turbobot doctor``'s memory plan: the profile that fits this GPU (or each card size on a
CPU-only box), the host RAM it needs and a rough seconds-per-image."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.config import Settings
from bot.entry.doctor.report import Report

if TYPE_CHECKING:
    from engine.plan import ModelSizes, Plan, Profile, ProfilePlan
    from engine.probe import TorchInfo


def plan_memory(
    settings: Settings,
    info: TorchInfo | None,
    sizes: tuple[float | None, float | None],
    transformer_params: int,
    report: Report,
) -> None:
    from engine import plan as memplan
    from engine.probe import host_ram_gib

    gpu_loras, resident = _lora_bytes(settings, report)
    gpu_gib, host_gib = sizes
    gpu = info.gpu if info else None
    free = gpu_gib if gpu_gib is not None else (gpu.free_gib if gpu else None)
    profile, plan = memplan.choose_profile(free, gpu_loras, resident_styles_bytes=resident)
    requested = settings.memory_profile
    if requested in ("full", "balanced", "low") and free is not None:
        row = plan.row(requested)
        if not row.fits:
            report.problems.append(
                f"TURBOBOT_MEMORY_PROFILE={requested} needs {row.vram_gib:.1f} GiB "
                f"of GPU memory (+{plan.margin_gib:g} margin), {free:.1f} GiB free: use auto."
            )
        profile = requested
    report.plan, report.profile = plan, profile
    if free is not None and not plan.fits_any:
        report.problems.append(
            f"No memory profile fits {free:.1f} GiB of GPU memory (low needs "
            f"{plan.row('low').vram_gib:.1f} GiB + margin): use a bigger card."
        )
    chosen = plan.row(profile) if profile != "cpu" or free is None else None
    total_ram = host_gib if host_gib is not None else host_ram_gib()[0]
    need = _host_need(settings, chosen) if chosen is not None else 0.0
    if need and total_ram and need > total_ram:
        report.problems.append(
            f"Profile {profile} needs {need:.0f} GiB of host RAM while loading, "
            f"this machine has {total_ram:.0f} GiB: add RAM or swap."
        )
    name = gpu.name if gpu and gpu_gib is None else None
    report.seconds = _seconds(name, profile, transformer_params, plan)
    if free is None:
        report.cards = _cards(transformer_params, gpu_loras, resident)


def _host_need(settings: Settings, row: ProfilePlan) -> float:
    """Host RAM (GiB) the profile needs at its peak; 0 for the tiny model.

    Real weights are read into host RAM first (the plan's peak). The synthetic model creates
    what a profile keeps on the GPU directly there, so only ``low`` (whose transformer is cast
    to fp8 on the host) and ``cpu`` reach that peak.
    """
    if settings.is_tiny:
        return 0.0
    if settings.is_synthetic and row.profile in ("full", "balanced"):
        return row.host_steady_gib
    return row.host_peak_gib


def _lora_bytes(settings: Settings, report: Report) -> tuple[int, int]:
    """LoRA bytes on the GPU (Turbo + the largest style) and in the resident style cache."""
    from engine import plan as memplan

    if settings.is_tiny:  # plan for the real files the real model would use
        typical = memplan.TURBO_BYTES + memplan.STYLE_BYTES
        return typical, settings.max_resident_styles * memplan.STYLE_BYTES
    turbo = next((r.bytes for r in report.loras if r.name == "turbo"), memplan.TURBO_BYTES)
    styles = sorted((r.bytes for r in report.loras if r.name != "turbo"), reverse=True)
    return turbo + (styles[0] if styles else 0), sum(styles[: settings.max_resident_styles])


def _seconds(gpu_name: str | None, profile: Profile, params: int, plan: Plan) -> float | None:
    from engine.probe import seconds_per_image, tflops_for

    tflops = tflops_for(gpu_name) if gpu_name else None
    if tflops is None or profile == "cpu":
        return None
    from engine.plan import real_sizes

    streamed = _streamed_bytes(real_sizes()) if profile != "full" else 0
    return seconds_per_image(tflops, transformer_params=params, streamed_bytes=streamed)


def _streamed_bytes(sizes: ModelSizes) -> int:
    """Text-encoder bytes the offloaded profiles stream per image: all but the token embedding
    (looked up on the host) and the LM head of the same size (dropped)."""
    return sizes.text_encoder_bf16 - 2 * sizes.text_encoder_embed


# Card classes a CPU-only box is told about: (label, free GiB, dense bf16 TFLOP/s).
CARDS: tuple[tuple[str, float, float], ...] = (
    ("RTX 4090 24 GB", 23.1, 165.0),
    ("RTX 5090 32 GB", 31.0, 209.0),
    ("A100 40 GB", 39.0, 312.0),
    ("L40S 48 GB", 44.0, 362.0),
    ("H100 80 GB", 78.6, 989.0),
)


def _cards(params: int, gpu_loras: int, resident: int) -> list[dict[str, Any]]:
    from engine import plan as memplan
    from engine.probe import seconds_per_image

    out = []
    for label, free, tflops in CARDS:
        profile, p = memplan.choose_profile(free, gpu_loras, resident_styles_bytes=resident)
        streamed = _streamed_bytes(memplan.real_sizes()) if profile != "full" else 0
        out.append(
            {
                "card": label,
                "free_gib": free,
                "profile": profile if p.fits_any else None,
                "vram_gib": round(p.row(profile).vram_gib, 1),
                "seconds": round(
                    seconds_per_image(tflops, transformer_params=params, streamed_bytes=streamed), 1
                ),
            }
        )
    return out
