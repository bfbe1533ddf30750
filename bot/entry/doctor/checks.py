"""The checks of ``turbobot doctor``: settings and tokens, torch and the GPU, host RAM and disk,
the model's presence, and every LoRA (Turbo and styles) by its safetensors header mapped onto the
configured transformer built on ``meta``. Each adds facts, notes or problems to the report; the
memory plan is :mod:`bot.entry.doctor.plan`'s.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import Settings, find_env_file
from bot.entry.doctor.plan import plan_memory
from bot.entry.doctor.report import Report
from bot.preflight import check_settings, load_settings, resolve_turbo, verify_tokens

if TYPE_CHECKING:
    from engine.probe import LoraReport, TorchInfo

REAL_WEIGHTS_GB = 58.0  # Qwen-Image-2512 in bf16 as downloaded (all components)
SYNTHETIC_LORAS_GB = 3.6  # Turbo + two styles, written to the data dir on first start


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
    _vlm(settings, report, missing=model_missing)
    plan_memory(settings, info, (gpu_gib, host_gib), transformer_params, report)
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


def _vlm(settings: Settings, report: Report, *, missing: bool) -> None:
    """Whether /describe, --enhance and the safety check can run, and why not, from the text
    encoder's files (headers only: no weight is loaded)."""
    if not settings.vlm:
        report.facts.append("VLM: describe, enhance and safety check off (TURBOBOT_VLM=0)")
        return
    if missing:
        return  # the missing model is reported already
    from bot.slices import engine_settings
    from engine.loading import inspect_vlm
    from engine.vlm import FEATURES

    features = inspect_vlm(engine_settings(settings))
    for name, line in zip(FEATURES, features.lines(), strict=True):
        (report.facts if features.available(name) else report.notes).append(f"VLM {line}")


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
        transformer = meta_transformer(settings.engine())
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

    ensure_demo_loras(settings.engine(), linears)  # tiny: writes its few-kB demo LoRAs
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
