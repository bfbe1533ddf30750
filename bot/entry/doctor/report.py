"""What ``turbobot doctor`` found, and how it is printed (text or one JSON object)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.plan import Plan, Profile
    from engine.probe import LoraReport


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
