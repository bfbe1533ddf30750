"""``turbobot doctor``: will the bot run here, and how? Answered before any weight is loaded.

Checks the settings, torch and the GPU, host RAM and disk, the model's presence, and every LoRA
(Turbo and styles) by its safetensors header mapped onto the configured transformer built on
``meta``; then prints the memory plan per profile, what ``auto`` picks and a rough
seconds-per-image for this GPU (or, on a CPU-only box, for each card size). One line per problem,
each saying what to do. Exit 0 when the bot can run, 1 when not. ``--json`` prints one object.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import Settings, find_env_file
from bot.preflight import check_settings, load_settings, resolve_turbo, verify_tokens

if TYPE_CHECKING:
    from engine.plan import ModelSizes, Plan, Profile, ProfilePlan
    from engine.probe import LoraReport, TorchInfo

REAL_WEIGHTS_GB = 58.0  # Qwen-Image-2512 in bf16 as downloaded (all components)
SYNTHETIC_LORAS_GB = 3.6  # Turbo + two styles, written to the data dir on first start


@dataclass(slots=True)
class Report:
    """Everything doctor found; ``problems`` stop the bot, ``notes`` do not."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)
    loras: list[LoraReport] = field(default_factory=list)
    plan: Plan | None = None
    profile: Profile | None = None
    seconds: float | None = None
    cards: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def main(*, as_json: bool, gpu_gib: float | None) -> int:
    report = diagnose(gpu_gib=gpu_gib)
    print(to_json(report) if as_json else to_text(report))
    return 0 if report.ok else 1


def diagnose(
    *,
    gpu_gib: float | None = None,
    settings: Settings | None = None,
    verify: bool = True,
    host_gib: float | None = None,
) -> Report:
    """Every check. ``gpu_gib`` plans for a card with that much free memory instead of the one
    present, ``host_gib`` for that much host RAM; ``settings`` given skips reading them and
    ``verify=False`` the token calls (tests)."""
    report = Report()
    if settings is None:
        settings, problems = load_settings(find_env_file())
        report.problems += [str(p) for p in problems]
    found = check_settings(settings)
    if verify:
        found += asyncio.run(verify_tokens(settings))
    # A platform that cannot be reached right now is no configuration mistake: a note.
    report.problems += [str(p) for p in found if p.fatal]
    report.notes += [f"{p} (the bot starts anyway)" for p in found if not p.fatal]
    model_missing = any(p.setting == "TURBOBOT_MODEL" for p in found)
    _platforms(settings, report)
    info = _check_torch(settings, report)
    linears, transformer_params = _model(settings, report, missing=model_missing)
    _check_loras(settings, linears, report)
    _plan(settings, info, (gpu_gib, host_gib), transformer_params, report)
    return report


def _platforms(settings: Settings, report: Report) -> None:
    tokens = (("Discord", settings.discord_token), ("Telegram", settings.telegram_token))
    platforms = [name for name, token in tokens if token is not None]
    if platforms:
        report.facts.append(f"platforms: {', '.join(platforms)} (tokens checked)")
    else:
        report.notes.append(
            "No DISCORD_TOKEN or TELEGRAM_TOKEN: the bot starts the console chat only."
        )


# ---------------------------------------------------------------- torch, GPU, host


def _check_torch(settings: Settings, report: Report) -> TorchInfo | None:
    from engine import memory

    memory.set_alloc_conf()  # before anything touches CUDA
    try:
        from engine.probe import torch_info

        info = torch_info()
    except (ImportError, RuntimeError) as exc:
        report.problems.append(f"torch does not load ({exc}); rerun scripts/install.")
        return None
    build = f"CUDA {info.cuda_build}" if info.cuda_build else "CPU-only build"
    report.facts.append(f"torch {info.version} ({build})")
    if info.gpu is not None:
        g = info.gpu
        report.facts.append(
            f"GPU {g.name}: {g.total_gib:.1f} GiB, {g.free_gib:.1f} GiB free "
            f"(compute {g.capability}, driver {g.driver})"
        )
    elif info.cuda_build is None and not settings.is_tiny:
        report.notes.append(
            "torch is a CPU-only build: install the CUDA build of the same torch version "
            "(see README) to use a GPU."
        )
    elif not settings.is_tiny:
        report.notes.append("No CUDA GPU visible (driver, CUDA_VISIBLE_DEVICES?): CPU only.")
    _check_host(settings, report)
    return info


def _check_host(settings: Settings, report: Report) -> None:
    from engine.probe import free_disk_gib, host_ram_gib

    total, available = host_ram_gib()
    report.facts.append(f"host RAM {total:.1f} GiB ({available:.1f} GiB available)")
    need, where = _disk_need(settings)
    free = free_disk_gib(where)
    report.facts.append(f"disk free at {where}: {free:.1f} GiB")
    if need and free < need:
        report.problems.append(
            f"Only {free:.1f} GiB free at {where}, {need:.0f} GiB needed: free disk space "
            "or point HF_HOME / TURBOBOT_DATA_DIR elsewhere."
        )


def _disk_need(settings: Settings) -> tuple[float, Path]:
    """Disk the configured model still needs (GiB) and where it will be written."""
    if settings.is_tiny:
        return 0.0, settings.data_dir
    if settings.is_synthetic:
        loras = settings.resolved_lora_dir / "turbo" / "synthetic-turbo.safetensors"
        return (0.0 if loras.exists() else SYNTHETIC_LORAS_GB), settings.data_dir
    if Path(settings.model).expanduser().is_dir():
        return 0.0, Path(settings.model).expanduser()
    return (0.0 if _cached(settings.model) else REAL_WEIGHTS_GB), _hf_home()


def _hf_home() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "model_index.json")
    except ValueError:  # not a repo id
        return False
    return isinstance(found, str)


# ---------------------------------------------------------------- model and LoRAs


def _model(
    settings: Settings, report: Report, *, missing: bool
) -> tuple[dict[str, tuple[int, int]], int]:
    """Linears and parameter count of the configured transformer, built on ``meta``.

    The tiny model and a model not downloaded yet are planned (and LoRAs checked) on the real
    Qwen-Image-2512 configs shipped with the engine.
    """
    from engine.loading import EngineUnavailable, meta_transformer
    from engine.plan import build_on_meta, real_sizes
    from engine.styles import linear_shapes

    if settings.is_tiny:
        report.notes.append(
            "TURBOBOT_MODEL=tiny: the offline noise model (no weights needed). The plan below "
            "is for the real Qwen-Image-2512 you would download."
        )
    elif settings.is_synthetic:
        report.notes.append(
            "TURBOBOT_MODEL=synthetic: the real model's size with random weights (draws noise; "
            "needs no download)."
        )
    # The plan needs the real sizes anyway (built once per process and cached).
    params = real_sizes().transformer_bf16 // 2
    if missing:
        return linear_shapes(build_on_meta("transformer")), params
    try:
        transformer = meta_transformer(settings)
    except EngineUnavailable as exc:  # e.g. a folder without transformer/config.json
        report.problems.append(f"{exc} Point TURBOBOT_MODEL at a complete diffusers folder.")
        return linear_shapes(build_on_meta("transformer")), params
    report.facts.append(
        f"model {settings.model}: transformer {len(transformer.transformer_blocks)} blocks, "
        f"{sum(p.numel() for p in transformer.parameters()) / 1e9:.2f} B parameters"
    )
    return linear_shapes(transformer), params


def _check_loras(settings: Settings, linears: dict[str, tuple[int, int]], report: Report) -> None:
    """The Turbo LoRA (a bad one stops the bot: a problem) and every style (a refused style is
    left out by the bot, which still runs: a note), each mapped onto the transformer."""
    if settings.is_synthetic:
        report.loras.extend(_synthetic_reports(linears))
        return
    from engine.loading import ensure_demo_loras
    from engine.probe import lora_file_report

    ensure_demo_loras(settings, linears)  # tiny: writes its few-kB demo LoRAs
    turbo, _problem = resolve_turbo(settings)  # a problem is already reported by preflight
    if turbo is not None and turbo.is_file():
        checked = lora_file_report("turbo", turbo, linears)
        report.loras.append(checked)
        if not checked.ok:
            report.problems.append(
                f"Turbo LoRA {turbo.name}: {checked.problem} (replace it: see README, download)."
            )
    _check_styles(settings, linears, report)


def _check_styles(settings: Settings, linears: dict[str, tuple[int, int]], report: Report) -> None:
    from engine.probe import LoraReport, lora_file_report
    from engine.styles import scan_styles

    lora_dir = settings.resolved_lora_dir
    found, refused = scan_styles(lora_dir, linears)  # the bot's own rules, headers only
    for name in sorted({*found, *refused}):
        files = sorted((lora_dir / name).glob("*.safetensors"))
        if name in found:
            report.loras.append(lora_file_report(name, found[name].lora_path, linears))
        elif len(files) == 1:
            checked = lora_file_report(name, files[0], linears)
            report.loras.append(checked if not checked.ok else _refused(checked, refused[name]))
        else:
            report.loras.append(
                LoraReport(name, False, None, False, (), 0, 0, 0, 0, 0, refused[name])
            )
        if name in refused:
            report.notes.append(f"Style {name} refused, the bot runs without it: {refused[name]}")


def _refused(checked: LoraReport, why: str) -> LoraReport:
    """A style whose file maps fine but whose folder the bot refuses (manifest, links...)."""
    from dataclasses import replace

    return replace(checked, ok=False, problem=why)


def _synthetic_reports(linears: dict[str, tuple[int, int]]) -> list[LoraReport]:
    """The synthetic LoRAs from their shapes: no file needs to exist yet."""
    from engine import synthetic
    from engine.probe import lora_report

    wanted = [("turbo", "kohya", synthetic.LORA_RANK)]
    wanted += [(n, s[3], synthetic.STYLE_RANK) for n, s in synthetic.SYNTHETIC_STYLES.items()]
    out = []
    for name, layout, rank in wanted:
        header = synthetic.lora_header(linears, layout=layout, rank=rank)
        out.append(lora_report(name, header, linears, synthetic.lora_bytes(linears, rank=rank)))
    return out


# ---------------------------------------------------------------- plan


def _plan(
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


# ---------------------------------------------------------------- output


def to_json(report: Report) -> str:
    plan = report.plan
    row = (
        plan.row(report.profile)
        if plan and report.profile and plan.rows and _has(plan, report.profile)
        else None
    )
    data = {
        "ok": report.ok,
        "problems": report.problems,
        "notes": report.notes,
        "facts": report.facts,
        "plan": {
            "profile": report.profile,
            "vram_gib": round(row.vram_gib, 2) if row else None,
            "host_ram_gib": round(row.host_steady_gib, 2) if row else None,
            "host_ram_peak_gib": round(row.host_peak_gib, 2) if row else None,
            "gpu_gib": plan.gpu_gib if plan else None,
            "seconds_per_image": round(report.seconds, 2) if report.seconds else None,
            "profiles": [
                {
                    "profile": r.profile,
                    "vram_gib": round(r.vram_gib, 2),
                    "host_ram_gib": round(r.host_steady_gib, 2),
                    "host_ram_peak_gib": round(r.host_peak_gib, 2),
                    "fits": r.fits,
                }
                for r in (plan.rows if plan else ())
            ],
        },
        "cards": report.cards,
        "loras": [{k: v for k, v in asdict(r).items() if k != "bytes"} for r in report.loras],
    }
    return json.dumps(data, indent=2, ensure_ascii=False)


def _has(plan: Plan, profile: Profile) -> bool:
    return any(r.profile == profile for r in plan.rows)


def to_text(report: Report) -> str:
    lines = [f"  {f}" for f in report.facts]
    for r in report.loras:
        state = "ok" if r.ok else "REFUSED"
        lines.append(
            f"  LoRA {r.name}: {state}, rank {r.rank}, {r.modules_matched} modules matched, "
            f"{r.modules_missing} not matching, {r.bytes / 1e9:.2f} GB"
        )
    if report.plan is not None:
        lines += ["", *report.plan.describe().splitlines()]
        if report.seconds is not None:
            lines.append(
                f"  expected ≈ {report.seconds:.1f} s per 1024² 4-step image ({report.profile})"
            )
    if report.cards:
        lines += ["", "No GPU here. What each card would run (auto):"]
        for c in report.cards:
            pick = c["profile"] or "nothing fits"
            vram = f"VRAM {c['vram_gib']:5.1f} GiB"
            lines.append(f"  {c['card']:<16} {pick:<9} {vram}  ≈ {c['seconds']} s/image")
    lines += ["", *(f"note: {n}" for n in report.notes)]
    lines += [f"PROBLEM: {p}" for p in report.problems]
    lines.append(
        "OK: the bot can run."
        if report.ok
        else f"{len(report.problems)} problem(s): the bot cannot run yet."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(as_json="--json" in sys.argv, gpu_gib=None))
