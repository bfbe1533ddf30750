"""What ``turbobot doctor`` needs to know about this machine and the LoRA files, without weights.

GPU and torch facts (no model loaded), host RAM and disk, a header-only report of how a LoRA
file maps onto the transformer, and a rough seconds-per-image estimate from the model's FLOPs.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from engine.lora_keys import Header, LinearShapes, LoraRefused, inspect_header
from engine.styles import read_header

GIB = 2**30
# Dense bf16 tensor TFLOP/s (fp32 accumulate) by a substring of the CUDA device name; the
# first match wins, so the more specific names come first. Public spec-sheet numbers.
BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L40", 181.0),
    ("RTX 6000 Ada", 364.0),
    ("RTX PRO 6000", 500.0),
    ("A6000", 155.0),
    ("RTX 5090", 209.0),
    ("RTX 4090", 165.0),
    ("RTX 3090", 71.0),
    ("L4", 121.0),
    ("A10", 125.0),
)
# What a good bf16 run reaches of the spec number on this model's large GEMMs plus attention.
_EFFICIENCY = 0.5
PCIE_GBPS = 20.0  # host→GPU copy rate of a PCIe 4 x16 link in practice


@dataclass(frozen=True, slots=True)
class Gpu:
    """The CUDA device as torch sees it (no model loaded)."""

    name: str
    total_gib: float
    free_gib: float
    capability: str
    driver: str


@dataclass(frozen=True, slots=True)
class TorchInfo:
    version: str
    cuda_build: str | None  # None: a CPU-only build of torch
    gpu: Gpu | None


def torch_info() -> TorchInfo:
    """torch's version, whether it is a CUDA build, and GPU 0 if one is usable."""
    import torch

    gpu = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        free, total = torch.cuda.mem_get_info(0)
        gpu = Gpu(
            name=props.name,
            total_gib=total / GIB,
            free_gib=free / GIB,
            capability=f"{props.major}.{props.minor}",
            driver=driver_version(),
        )
    return TorchInfo(version=torch.__version__, cuda_build=torch.version.cuda, gpu=gpu)


def driver_version() -> str:
    """The NVIDIA driver version from the kernel module, or "unknown"."""
    proc = Path("/proc/driver/nvidia/version")
    if proc.is_file():
        for word in proc.read_text(encoding="utf-8", errors="replace").split():
            if word.count(".") >= 1 and word.replace(".", "").isdigit():
                return word
    return "unknown"


def host_ram_gib() -> tuple[float, float]:
    """(total, available) host RAM in GiB, from /proc/meminfo (0, 0 where there is none)."""
    info = Path("/proc/meminfo")
    if not info.is_file():
        return 0.0, 0.0
    values: dict[str, float] = {}
    for line in info.read_text(encoding="utf-8").splitlines():
        key, _, rest = line.partition(":")
        if rest.strip().endswith("kB"):
            values[key] = float(rest.split()[0]) * 1024 / GIB
    return values.get("MemTotal", 0.0), values.get("MemAvailable", 0.0)


def free_disk_gib(path: Path) -> float:
    """Free space on the file system that holds ``path`` (or its nearest existing parent)."""
    probe = path.resolve()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free / GIB


def tflops_for(gpu_name: str) -> float | None:
    return next((t for key, t in BF16_TFLOPS if key.lower() in gpu_name.lower()), None)


def seconds_per_image(
    tflops: float,
    *,
    transformer_params: int,
    steps: int = 4,
    image_tokens: int = 4096,
    text_tokens: int = 40,
    streamed_bytes: int = 0,
) -> float:
    """Rough seconds for one image: 2·params FLOPs per token per step at half the spec rate,
    plus the bytes streamed from host RAM per image over PCIe (offloaded profiles)."""
    flops = 2 * transformer_params * (image_tokens + text_tokens) * steps
    compute = flops / (tflops * 1e12 * _EFFICIENCY)
    return compute + streamed_bytes / (PCIE_GBPS * 1e9)


# ---------------------------------------------------------------- LoRA headers


@dataclass(frozen=True, slots=True)
class LoraReport:
    """How a LoRA file maps onto the transformer, read from its header only."""

    name: str
    ok: bool
    rank: int | None
    has_alpha: bool
    layouts: tuple[str, ...]
    modules_matched: int
    modules_missing: int  # keys that fit no Linear of this transformer (any makes it not ok)
    modules_unpaired: int  # Linears with only one of lora_A/lora_B left (not ok either)
    modules_uncovered: int  # Linears the LoRA leaves alone (fine: most styles target a subset)
    bytes: int
    problem: str | None = None


def lora_report(name: str, header: Header, linears: LinearShapes, nbytes: int) -> LoraReport:
    """The engine's normaliser check (:func:`engine.lora_keys.inspect_header`) as a report."""
    found = inspect_header(header, linears)
    return LoraReport(
        name=name,
        ok=found.ok,
        rank=found.rank or None,
        has_alpha=found.has_alpha,
        layouts=found.layouts,
        modules_matched=len(found.modules),
        modules_missing=len(found.unexpected) + len(found.bad_shapes),
        modules_unpaired=len(found.unpaired),
        modules_uncovered=found.linears_total - len(found.modules),
        bytes=nbytes,
        problem=found.problem(),
    )


def lora_file_report(name: str, path: Path, linears: LinearShapes) -> LoraReport:
    """:func:`lora_report` for a file; an unreadable or non-safetensors file is not ok."""
    try:
        header = read_header(path)
        size = path.stat().st_size
    except (LoraRefused, OSError) as exc:
        return LoraReport(name, False, None, False, (), 0, 0, 0, 0, 0, problem=str(exc))
    return lora_report(name, header, linears, size)
