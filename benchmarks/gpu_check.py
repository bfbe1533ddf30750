"""``scripts/gpu-check``: measure turbobot on a CUDA machine with the synthetic real-size model.

No weights and no network: ``TURBOBOT_MODEL=synthetic`` builds Qwen-Image-2512 from its real
configs with random weights (speed and memory do not depend on the values). For each memory
profile, in its own process under its memory cap (``torch.cuda.set_per_process_memory_fraction``
stands in for a smaller card): load, a cold and 5 warm 1024² 4-step images, a switch between the
two styles, one CFG image; synchronized per-stage times, peak allocated/reserved VRAM, host RSS.
Then ``full`` with ``torch.compile``. Writes BENCHMARKS.md's "measured on GPU" section and exits
1 when a profile fails or goes over its cap.

    scripts/gpu-check             # on the CUDA box, < 8 minutes
    scripts/gpu-check --dry-run   # the same plan on ``meta``, any machine (CI)
    scripts/gpu-check --prepare   # on a connected machine: the wheel folder for an offline box

The box brings its own CUDA torch (≥ 2.9) and transformers; what else the engine needs and the
box lacks is installed from ``.gpu-wheels/`` (made by ``--prepare``), never from the network.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WHEELS = ROOT / ".gpu-wheels"
MAX_WHEELS_MIB = 60
BUDGET_S = 7.5 * 60  # the whole run, under the 8 minutes promised
GIB = 2**30
WARM_RUNS = 5
STEPS = 4
ASPECT = "1:1"  # 1024x1024
PROMPT = "a lighthouse on a cliff at dusk, volumetric light"


@dataclass(frozen=True, slots=True)
class Run:
    """One measured configuration: a memory profile under a cap (None: the whole card)."""

    name: str
    profile: str
    cap_gib: float | None
    compile: bool = False
    styles: bool = True
    cfg: bool = True
    warm: int = WARM_RUNS


PLAN: tuple[Run, ...] = (
    Run("full", "full", None),
    Run("balanced (48 GiB cap)", "balanced", 48.0),
    Run("low (24 GiB cap)", "low", 24.0),
    Run("full + compile", "full", None, compile=True, cfg=False),
)
DRY_RUN_CARD_GIB = 79.1  # an H100 80 GB after the CUDA context: what `full` runs on

# ---------------------------------------------------------------- offline dependencies

# Distributions the engine path imports that an offline CUDA box may lack or have too old
# (diffusers 0.42.1 needs huggingface-hub ≥ 1.32 and safetensors ≥ 0.8; requests is no longer a
# transformers dependency). Pure Python but the few in BINARY, shipped per CPython version.
NEEDED: tuple[tuple[str, str], ...] = (
    ("diffusers", "==0.42.1"),
    ("peft", ">=0.17"),
    ("accelerate", ">=1.10"),
    ("huggingface-hub", ">=1.32"),
    ("safetensors", ">=0.8"),
    ("pydantic", ">=2.10"),
    ("pydantic-settings", ">=2.10"),
    ("python-dotenv", ">=1.2.2"),
    ("annotated-types", ">=0.6"),
    ("typing-inspection", ">=0.4.4"),
    ("typing-extensions", ">=4.16"),
    ("importlib-metadata", ">=6"),
    ("zipp", ">=3.20"),
    ("filelock", ">=3.12"),
    ("requests", ">=2.31"),
    ("urllib3", ">=2"),
    ("idna", ">=3"),
    ("certifi", ">=2024"),
    ("charset-normalizer", ">=3"),
)
# pydantic pins its compiled core exactly: they travel and install together.
TOGETHER = {"pydantic": "pydantic-core"}
BINARY = ("pydantic-core", "safetensors", "charset-normalizer")
BINARY_PYTHONS = ("3.11", "3.12", "3.13")
# What the box must bring itself (large or CUDA-specific): checked, never shipped.
BOX_BRINGS: tuple[tuple[str, str], ...] = (
    ("torch", ">=2.9"),
    ("transformers", ">=5.0"),
    ("tokenizers", ">=0.22"),
    ("numpy", ">=1.26"),
    ("pillow", ">=10"),
    ("regex", ">=2023"),
    ("packaging", ">=23"),
    ("psutil", ">=5"),
    ("pyyaml", ">=6"),
    ("tqdm", ">=4.60"),
)


def canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def wheel_requirements(versions: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """``--prepare``'s pins from the versions this checkout's tests ran on: (pure, binary)."""
    names = [n for n, _ in NEEDED] + list(TOGETHER.values())
    missing = [n for n in names if canonical(n) not in versions]
    if missing:
        raise SystemExit(f"--prepare: not installed here: {', '.join(missing)} (scripts/install)")
    pins = [f"{n}=={versions[canonical(n)]}" for n in names]
    pure = [p for p in pins if p.split("==")[0] not in BINARY]
    return pure, [p for p in pins if p.split("==")[0] in BINARY]


def installed_versions() -> dict[str, str]:
    return {
        canonical(d.metadata["Name"]): d.version
        for d in importlib.metadata.distributions()
        if d.metadata["Name"]
    }


def select_wheels(
    installed: Mapping[str, str], wheels: Iterable[Path], tags: Iterable[Any]
) -> tuple[list[Path], list[str]]:
    """Wheels to install for what ``installed`` lacks or has too old; and what none covers."""
    from packaging.specifiers import SpecifierSet
    from packaging.utils import parse_wheel_filename

    compatible = set(tags)
    found: dict[str, list[tuple[Any, Path]]] = {}
    for wheel in wheels:
        name, version, _build, wheel_tags = parse_wheel_filename(wheel.name)
        if compatible & set(wheel_tags):
            found.setdefault(canonical(name), []).append((version, wheel))
    chosen: list[Path] = []
    unresolved: list[str] = []
    for name, spec in NEEDED:
        have = installed.get(canonical(name))
        if have is not None and SpecifierSet(spec).contains(have, prereleases=True):
            continue
        group = [name, *([TOGETHER[name]] if name in TOGETHER else [])]
        for member in group:
            want = SpecifierSet(spec if member == name else "")
            options = [w for v, w in sorted(found.get(canonical(member), [])) if v in want]
            if options:
                chosen.append(options[-1])  # the newest that fits
            else:
                unresolved.append(f"{member}{want}")
    return chosen, unresolved


def box_problems(installed: Mapping[str, str]) -> list[str]:
    """What the box itself must have (CUDA torch and friends), one line each."""
    from packaging.specifiers import SpecifierSet

    out = []
    for name, spec in BOX_BRINGS:
        have = installed.get(canonical(name))
        if have is None or not SpecifierSet(spec).contains(have.split("+")[0], prereleases=True):
            out.append(f"{name}{spec} is needed on this machine (found {have or 'none'})")
    return out


def ensure_offline_deps() -> None:
    """Install what the box lacks from ``.gpu-wheels/`` into a private folder, then re-exec."""
    from packaging import tags

    if os.environ.get("TURBOBOT_GPU_CHECK_DEPS") == "done":
        return
    installed = installed_versions()
    problems = box_problems(installed)
    if problems:
        raise SystemExit("gpu-check: " + "; ".join(problems))
    wheels, unresolved = select_wheels(installed, WHEELS.glob("*.whl"), tags.sys_tags())
    if unresolved:
        raise SystemExit(
            f"gpu-check: missing here and not in {WHEELS.name}/: {', '.join(unresolved)}; "
            "run `scripts/gpu-check --prepare` on a connected machine and copy the folder."
        )
    site = WHEELS / f"site-py{sys.version_info.major}{sys.version_info.minor}"
    if wheels:
        print(f"installing from {WHEELS.name}/: {', '.join(w.name for w in wheels)}")
        pip = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps"]
        pip += ["--no-compile", "--upgrade", "--target", str(site), *map(str, wheels)]
        subprocess.run(pip, check=True)
    path = [str(site), str(ROOT), os.environ.get("PYTHONPATH", "")]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(p for p in path if p)}
    env["TURBOBOT_GPU_CHECK_DEPS"] = "done"
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.gpu_check", *sys.argv[1:]], env)  # noqa: S606


def prepare(folder: Path = WHEELS) -> int:
    """Download the wheels an offline box may need (``pip download --no-deps``), ≤ 60 MiB."""
    pure, binary = wheel_requirements(installed_versions())
    folder.mkdir(exist_ok=True)
    base = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
    subprocess.run([*base, "-d", str(folder), *pure], check=True)
    for py in BINARY_PYTHONS:
        platform = ["--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64"]
        target = ["--python-version", py, "--implementation", "cp", *platform]
        subprocess.run([*base, *target, "-d", str(folder), *binary], check=True)
    size = sum(f.stat().st_size for f in folder.glob("*.whl"))
    print(f"{folder}: {len(list(folder.glob('*.whl')))} wheels, {size / 2**20:.1f} MiB")
    if size > MAX_WHEELS_MIB * 2**20:
        print(f"too big: the folder must stay under {MAX_WHEELS_MIB} MiB", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------- the plan, on meta


def dry_run() -> int:
    """Build the synthetic model on ``meta`` and walk the plan: what each run would need."""
    from engine import plan as memplan
    from engine import synthetic
    from engine.commands import make_spec
    from engine.styles import linear_shapes

    pipe = synthetic.build_pipeline()  # meta: shapes only
    linears = linear_shapes(pipe.transformer)
    turbo = synthetic.lora_bytes(linears)
    style = synthetic.lora_bytes(linears, rank=synthetic.STYLE_RANK)
    params = sum(p.numel() for p in pipe.transformer.parameters())
    print(
        f"synthetic Qwen-Image-2512 on meta: transformer {params / 1e9:.2f} B parameters, "
        f"Turbo LoRA {turbo / GIB:.2f} GiB, styles {style / GIB:.2f} GiB each"
    )
    failed = 0
    for run in PLAN:
        cap = run.cap_gib or DRY_RUN_CARD_GIB
        p = memplan.plan_for(cap, turbo + style, resident_styles_bytes=2 * style)
        row = p.row(run.profile)  # type: ignore[arg-type]
        fits = row.fits
        failed += not fits
        print(
            f"- {run.name}: create {synthetic.placement(run.profile)}; plan VRAM "
            f"{row.vram_gib:.1f} GiB + {p.margin_gib:g} margin under {cap:g} GiB: "
            f"{'fits' if fits else 'DOES NOT FIT'}; host {row.host_peak_gib:.1f} GiB peak"
        )
        a, b = synthetic.SYNTHETIC_STYLES
        images = _images(run, make_spec, (a, b))
        sizes = {(spec.width, spec.height, spec.steps) for _, spec in images}
        print(f"    {len(images)} images {sizes}: " + ", ".join(what for what, _ in images))
    print("dry run: " + ("every profile fits its cap" if not failed else f"{failed} do not fit"))
    return 1 if failed else 0


def _images(run: Run, make_spec: Any, styles: tuple[str, str]) -> list[tuple[str, Any]]:
    """The images one run makes, in order; ``styles``: the two styles it switches between."""
    a, b = styles

    def spec(seed: int, style: str | None = None, cfg: float = 1.0) -> Any:
        negative = "blurry, low quality" if cfg > 1 else None
        return make_spec(PROMPT, style, seed, STEPS, ASPECT, cfg, negative)

    out = [("cold", spec(1))] + [(f"warm {i}", spec(1 + i)) for i in range(1, run.warm + 1)]
    if run.styles:
        out += [(f"style {a} (first load)", spec(10, a)), (f"style {b} (first load)", spec(11, b))]
        out += [(f"style {a} (switch)", spec(12, a)), (f"style {b} (switch)", spec(13, b))]
    if run.cfg:
        out.append(("CFG 4", spec(20, cfg=4.0)))
    return out


# ---------------------------------------------------------------- one run, on the GPU


def measure(run: Run, data_dir: Path) -> dict[str, Any]:
    """Load and render under the cap in this process; a dict of the numbers."""
    import torch

    from bot.config import Settings
    from engine import memory
    from engine.loading import load_engine

    memory.set_alloc_conf()
    total = torch.cuda.get_device_properties(0).total_memory
    if run.cap_gib is not None:
        torch.cuda.set_per_process_memory_fraction(min(1.0, run.cap_gib * GIB / total))
    env = {
        "TURBOBOT_MODEL": "synthetic",
        "TURBOBOT_DATA_DIR": str(data_dir),
        "TURBOBOT_MEMORY_PROFILE": run.profile,
        "TURBOBOT_COMPILE": "true" if run.compile else "false",
    }
    settings = Settings(_env_file=None, **env)  # type: ignore[call-arg]
    t0 = time.perf_counter()
    engine = load_engine(settings.engine())
    torch.cuda.synchronize()
    load_s = time.perf_counter() - t0
    return {
        "run": run.name,
        "device": _device(torch),
        "profile": engine.profile,
        "cap_gib": run.cap_gib,
        "load_s": load_s,
        "images": render_all(engine, run, _CudaClock()),
        "host_rss_gib": _rss_gib("VmRSS"),
        "host_peak_rss_gib": _rss_gib("VmHWM"),
    }


class _CudaClock:
    """Synchronization and peak memory on CUDA (CPU runs use :class:`HostClock`)."""

    def __init__(self) -> None:
        import torch

        self.cuda = torch.cuda

    def sync(self, *_args: Any) -> None:
        self.cuda.synchronize()

    def reset(self) -> None:
        self.cuda.reset_peak_memory_stats()

    def peaks_gib(self) -> tuple[float, float]:
        return self.cuda.max_memory_allocated() / GIB, self.cuda.max_memory_reserved() / GIB


class HostClock:
    """No device to wait for and no device memory: the CPU smoke test's stand-in."""

    def sync(self, *_args: Any) -> None:
        """Nothing runs asynchronously on the CPU."""

    def reset(self) -> None:
        """No peak statistics to reset."""

    def peaks_gib(self) -> tuple[float, float]:
        return 0.0, 0.0


def render_all(engine: Any, run: Run, clock: Any) -> list[dict[str, Any]]:
    """The run's images on a loaded engine, each timed after the device finished it.

    ``clock.sync`` also runs after every text-encoder and transformer call, so the engine's own
    stage clocks (taken right after those return) measure finished GPU work, not launches.
    """
    from engine.commands import make_spec
    from engine.pipeline import render

    engine.pipe.text_encoder.register_forward_hook(clock.sync)
    engine.pipe.transformer.register_forward_hook(clock.sync)
    images = []
    names = sorted(engine.styles.styles)
    if run.styles and len(names) < 2:
        raise RuntimeError(f"gpu-check switches between two styles; this engine has {names}")
    pair = (names[0], names[1]) if run.styles else ("", "")
    for what, spec in _images(run, make_spec, pair):
        clock.reset()
        t = time.perf_counter()
        out = render(engine, spec, _no_progress)
        clock.sync()
        wall = time.perf_counter() - t
        tm = out.timings
        allocated, reserved = clock.peaks_gib()
        images.append(
            {
                "what": what,
                "size": list(out.image.size),
                "wall_s": wall,
                "text_encode_s": tm.text_encode_ms / 1e3,
                "denoise_s": tm.denoise_ms / 1e3,
                "step_s": [s / 1e3 for s in tm.step_ms],
                "decode_s": tm.decode_ms / 1e3,
                "peak_allocated_gib": allocated,
                "peak_reserved_gib": reserved,
            }
        )
    return images


def _no_progress(step: int, total: int) -> None:
    """Progress is not shown while measuring."""


def _rss_gib(field: str) -> float:
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024 / GIB
    return 0.0


# ---------------------------------------------------------------- the whole check


def run_all(data_dir: Path, out: Path) -> int:
    """Each run in its own process (a clean GPU and cap each); then BENCHMARKS.md.

    This parent never creates a CUDA context: the runs get the whole card.
    """
    start = time.monotonic()
    results: list[dict[str, Any]] = []
    for i, run in enumerate(PLAN):
        left = BUDGET_S - (time.monotonic() - start)
        if left < 60:
            results.append({"run": run.name, "error": "skipped: out of time"})
            continue
        result_file = out / f"run{i}.json"
        cmd = [sys.executable, "-m", "benchmarks.gpu_check", "--one", str(i)]
        cmd += ["--data-dir", str(data_dir), "--result", str(result_file)]
        print(f"== {run.name}", flush=True)
        try:
            proc = subprocess.run(cmd, timeout=left, check=False)
            ok = proc.returncode == 0 and result_file.exists()
        except subprocess.TimeoutExpired:
            ok = False
        if ok:
            results.append(json.loads(result_file.read_text(encoding="utf-8")))
        else:
            results.append({"run": run.name, "error": "failed (see the log above)"})
    device = next((r["device"] for r in results if "device" in r), "an unknown GPU (no run ended)")
    body = report(results, device)
    print(body)
    from benchmarks.report import write_section

    write_section("gpu-measured", "Measured on GPU (synthetic real-size model)", body)
    return 1 if any(_failed(r) for r in results) else 0


def _failed(result: Mapping[str, Any]) -> bool:
    if "error" in result:
        return True
    cap = result.get("cap_gib")
    peak = max(i["peak_reserved_gib"] for i in result["images"])
    return cap is not None and peak > cap


def _device(torch: Any) -> str:
    from engine.probe import driver_version

    name = torch.cuda.get_device_name(0)
    total = torch.cuda.get_device_properties(0).total_memory / GIB
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return (
        f"{date}; {name} ({total:.0f} GiB), driver {driver_version()}, torch "
        f"{torch.__version__} (CUDA {torch.version.cuda}), Python {sys.version.split()[0]}"
    )


def report(results: list[dict[str, Any]], device: str) -> str:
    """The BENCHMARKS.md section: one table row per run, then what failed."""
    lines = [
        f"Measured by `scripts/gpu-check` on {device}. Random weights of the real size "
        "(`TURBOBOT_MODEL=synthetic`), 1024x1024, 4 steps, Turbo LoRA + rank-32 styles; "
        "times synchronized; VRAM peaks reset before each image.",
        "",
        "| run | load s | cold s | warm median s (encode / steps / decode) "
        "| style first / switch s | CFG s | peak alloc / reserved GiB | host RSS GiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['run']} | {r['error']} |  |  |  |  |  |  |")
            continue
        lines.append(_row(r))
    failed = [r["run"] for r in results if _failed(r)]
    lines += [
        "",
        f"Failed or over the cap: {', '.join(failed)}." if failed else "Every run passed.",
    ]
    return "\n".join(lines)


def _row(r: Mapping[str, Any]) -> str:
    by = {i["what"]: i for i in r["images"]}
    warm = [i for i in r["images"] if i["what"].startswith("warm")]
    med = statistics.median
    encode, decode = med([w["text_encode_s"] for w in warm]), med([w["decode_s"] for w in warm])
    steps = med([sum(w["step_s"]) for w in warm])
    stages = f"{med([w['wall_s'] for w in warm]):.2f} ({encode:.2f} / {steps:.2f} / {decode:.2f})"
    firsts = [i["wall_s"] for i in r["images"] if "first load" in i["what"]]
    switches = [i["wall_s"] for i in r["images"] if "(switch)" in i["what"]]
    style = f"{med(firsts):.2f} / {med(switches):.2f}" if firsts else "-"
    cfg = f"{by['CFG 4']['wall_s']:.2f}" if "CFG 4" in by else "-"
    alloc = max(i["peak_allocated_gib"] for i in r["images"])
    reserved = max(i["peak_reserved_gib"] for i in r["images"])
    cap = f" (cap {r['cap_gib']:g})" if r.get("cap_gib") else ""
    return (
        f"| {r['run']} | {r['load_s']:.1f} | {by['cold']['wall_s']:.2f} | {stages} | {style} "
        f"| {cfg} | {alloc:.1f} / {reserved:.1f}{cap} | {r['host_peak_rss_gib']:.1f} |"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="walk the plan on meta (no GPU)")
    mode.add_argument("--prepare", action="store_true", help=f"fill {WHEELS.name}/ (network)")
    mode.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--data-dir", type=Path, default=ROOT / "data" / "gpu-check")
    p.add_argument("--result", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.prepare:
        return prepare()
    if args.dry_run:
        return dry_run()
    ensure_offline_deps()
    if args.one is not None:
        result = measure(PLAN[args.one], args.data_dir)
        args.result.write_text(json.dumps(result), encoding="utf-8")
        return 0
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # ask NVML, start no CUDA
    import torch

    if not torch.cuda.is_available():  # no CUDA context in this parent: runs get the card
        print("gpu-check needs a CUDA GPU (use --dry-run elsewhere)", file=sys.stderr)
        return 1
    args.data_dir.mkdir(parents=True, exist_ok=True)
    return run_all(args.data_dir, args.data_dir)


if __name__ == "__main__":
    sys.exit(main())
