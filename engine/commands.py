"""Engine-only CLI commands: ``turbobot styles [add]``, ``turbobot bench`` (``imagine`` goes
through the core: :mod:`bot.entry.imagine`).

Each loads the settings itself (as ``turbobot run`` does), runs the engine without the bot,
prints to the terminal and returns the process exit code (0 ok, 1 engine failure, 2 bad input).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import statistics
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from time import perf_counter

from bot.config import find_env_file
from bot.domain import ASPECTS, MAX_SEED, GenerationSpec, Timings
from bot.errors import BadRequest, TurbobotError
from bot.i18n import msg
from bot.preflight import load_settings
from bot.slices import EngineSettings
from engine import memory
from engine.executors import open_local_executor
from engine.pipeline import Engine
from engine.style_install import NewStyle
from engine.styles import LoraRefused


def styles() -> int:
    from engine.loading import scan_configured_styles

    settings = _settings()
    try:
        found, refused = scan_configured_styles(settings)
    except TurbobotError as exc:
        return _fail(exc)
    print(f"Styles in {settings.resolved_lora_dir}:")
    for s in found.values():
        i = s.info
        print(f"  {i.name:<16} {i.display_name} / {i.display_name_zh}  (strength {i.strength:g})")
        if i.description:
            print(f"  {'':<16} {i.description}")
    if not found:
        print("  (none; see loras/README.md to add one)")
    for name, why in refused.items():
        print(f"  refused {name}: {why}")
    return 0


def styles_add(source: Path, new: NewStyle) -> int:
    """``turbobot styles add``: check the file against the model, install it, say what next."""
    from engine.style_install import configured_linears, install_style

    settings = _settings()
    try:
        style = install_style(settings.resolved_lora_dir, source, new, configured_linears(settings))
    except LoraRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TurbobotError as exc:
        return _fail(exc)
    print(f"Installed style {style.name!r} in {style.lora_path.parent}")
    print(
        "A running bot offers it after a rescan, without reloading the model: "
        "`systemctl reload turbobot` or `kill -HUP <pid>`."
    )
    return 0


def bench(runs: int, aspect: str, steps: int) -> int:
    """What a GPU owner needs: load time, cold and warm image, stages, memory, styles, CFG."""
    settings = _settings()
    try:
        spec = make_spec("a lighthouse on a cliff at dusk", None, 1, steps, aspect, 1.0, None)
        report = asyncio.run(_bench(settings, spec, max(1, runs)))
    except TurbobotError as exc:
        return _fail(exc)
    model = "tiny (noise; TURBOBOT_MODEL=tiny)" if settings.is_tiny else settings.model
    print(f"model {model}  device {report.device}  profile {report.profile}")
    print(
        f"size {report.size}  steps {steps}  runs {runs} (after a cold first image)"
        f"  compile {'on' if settings.compile else 'off'}"
    )
    print(f"  {'load':<14} {report.load_s * 1e3:9.1f} ms")
    print(f"  {'cold image':<14} {report.cold.total_ms:9.1f} ms")
    for label, values in _stages(report.warm):
        print(
            f"  {label:<14} median {statistics.median(values):9.1f} ms   min {min(values):9.1f} ms"
        )
    cfg = statistics.median(t.total_ms for t in report.cfg)
    print(f"  {'CFG on (x4)':<14} median {cfg:9.1f} ms   (two transformer passes per step)")
    for label, ms in report.styles:
        print(f"  {label:<14} {ms:9.1f} ms")
    print(
        f"  peak memory    {report.peak_alloc_mb:9.0f} MiB allocated, "
        f"{report.peak_reserved_mb:.0f} MiB reserved (reset before each image)"
    )
    print(f"  host RSS       {report.rss_mb:9.0f} MiB now, {report.rss_peak_mb:.0f} MiB peak")
    return 0


@dataclass(frozen=True, slots=True)
class BenchReport:
    device: str
    profile: str
    size: str
    load_s: float
    cold: Timings
    warm: list[Timings]
    cfg: list[Timings]
    styles: list[tuple[str, float]]
    peak_alloc_mb: float
    peak_reserved_mb: float
    rss_mb: float
    rss_peak_mb: float


async def _bench(settings: EngineSettings, spec: GenerationSpec, runs: int) -> BenchReport:
    t0 = perf_counter()
    async with open_local_executor(settings) as executor:
        load_s = perf_counter() - t0
        first = await executor.generate(0, spec, _ignore)  # cold: first-call allocations
        warm, peaks = [], []
        for i in range(runs):
            memory.reset_peak()
            warm.append((await executor.generate(i + 1, spec, _ignore)).timings)
            peaks.append(memory.peak_bytes())
        cfg_spec = replace(spec, cfg=4.0, negative_prompt="blurry")
        cfg = [(await executor.generate(i, cfg_spec, _ignore)).timings for i in range(runs)]
        styles = await asyncio.to_thread(_style_times, executor.engine)
    engine = executor.engine
    return BenchReport(
        device=memory.device_name(),
        profile=engine.profile,
        size=f"{first.width}x{first.height}",
        load_s=load_s,
        cold=first.timings,
        warm=warm,
        cfg=cfg,
        styles=styles,
        peak_alloc_mb=max(p[0] for p in peaks) / 2**20,
        peak_reserved_mb=max(p[1] for p in peaks) / 2**20,
        rss_mb=memory.host_rss_bytes() / 2**20,
        rss_peak_mb=memory.peak_memory_mb() if memory.device_name() == "cpu" else _ru_maxrss(),
    )


def _style_times(engine: Engine) -> list[tuple[str, float]]:
    """First load (file → cache → slot) and a resident switch, on the installed style files."""
    lib = engine.styles
    names = sorted(lib.styles)[:2]
    if len(names) < 2:  # a switch needs two styles
        return []
    lib.unload_all(engine.pipe)
    out = []
    for label, name in (
        ("style load", names[0]),
        ("style load", names[1]),
        ("style switch", names[0]),
    ):
        t0 = perf_counter()
        lib.activate(engine.pipe, lib.styles[name], turbo=engine.has_turbo)
        memory.synchronize()
        out.append((f"{label}", (perf_counter() - t0) * 1e3))
    return [out[0], out[2]]


def _ru_maxrss() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- helpers


def make_spec(  # noqa: PLR0917 - mirrors the CLI's arguments one to one
    prompt: str,
    style: str | None,
    seed: int | None,
    steps: int,
    aspect: str,
    cfg: float,
    negative_prompt: str | None,
) -> GenerationSpec:
    """A spec from CLI arguments (the engine checks the rest when it runs)."""
    if aspect not in ASPECTS:
        raise BadRequest(msg("core.unknown_aspect", aspect=repr(aspect), known=", ".join(ASPECTS)))
    a = ASPECTS[aspect]
    return GenerationSpec(
        prompt=prompt,
        style=style,
        seed=secrets.randbelow(MAX_SEED + 1) if seed is None else seed,
        steps=steps,
        width=a.width,
        height=a.height,
        cfg=cfg,
        negative_prompt=negative_prompt,
    )


def format_timings(t: Timings) -> str:
    steps = ", ".join(f"{ms:.0f}" for ms in t.step_ms)
    return (
        f"text encode {t.text_encode_ms:.0f} ms · denoise {t.denoise_ms:.0f} ms [{steps}] · "
        f"decode {t.decode_ms:.0f} ms · jpeg {t.jpeg_ms:.0f} ms · total {t.total_ms:.0f} ms"
    )


def _stages(ts: list[Timings]) -> list[tuple[str, list[float]]]:
    rows = [("text encode", [t.text_encode_ms for t in ts])]
    rows += [(f"step {k + 1}", [t.step_ms[k] for t in ts]) for k in range(len(ts[0].step_ms))]
    rows += [
        ("VAE decode", [t.decode_ms for t in ts]),
        ("JPEG encode", [t.jpeg_ms for t in ts]),
        ("total", [t.total_ms for t in ts]),
    ]
    return rows


def _ignore(step: int, total: int) -> None:
    """Progress is not shown while benchmarking."""


def _settings() -> EngineSettings:
    """The bot's own settings (same .env lookup); bad values are one line each, exit code 2."""
    settings, problems = load_settings(find_env_file())
    if problems:
        for problem in problems:
            print(f"turbobot: {problem}", file=sys.stderr)
        raise SystemExit(2)
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    return settings.engine()


def _fail(exc: TurbobotError) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return 2 if isinstance(exc, BadRequest) else 1
