"""A job as a row of the ``jobs`` table and back (the one place that knows the columns)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict
from typing import Any

from bot.domain import (
    GenerationSpec,
    ImageVerdict,
    Job,
    JobKind,
    JobState,
    Language,
    Platform,
    Requester,
    Timings,
)

JOB_COLUMNS = (
    "id, platform, user_id, display_name, channel_id, server_id, reply_to, user_key, server_key, "
    "prompt, style, seed, steps, width, height, cfg, negative_prompt, state, attempts, created_at, "
    "started_at, finished_at, image_path, timings, error, posted_message_id, parent_job_id, "
    "posted_channel_id, file_ref, deleted_at, details_hidden, n, kind, init_image, strength, "
    "language, enhance, vlm_language, text"
)
PLACEHOLDERS = ", ".join("?" * len(JOB_COLUMNS.split(",")))


def timings_to_json(timings: Timings | None) -> str | None:
    return None if timings is None else json.dumps(asdict(timings))


def timings_from_json(text: str | None) -> Timings | None:
    if text is None:
        return None
    data = json.loads(text)
    data["step_ms"] = tuple(data.get("step_ms", ()))
    return Timings(**data)


def verdict_columns(verdict: ImageVerdict | None) -> dict[str, Any]:
    """The safety check's columns, for ``update_job`` (all NULL: not checked)."""
    if verdict is None:
        return {"safety_flagged": None, "safety_score": None, "safety_policy": None}
    return {
        "safety_flagged": int(verdict.flagged),
        "safety_score": verdict.score,
        "safety_policy": verdict.policy,
    }


def verdict_from_row(row: sqlite3.Row) -> ImageVerdict | None:
    if row["safety_flagged"] is None:
        return None
    return ImageVerdict(bool(row["safety_flagged"]), row["safety_score"], row["safety_policy"])


def job_row(job: Job) -> tuple[Any, ...]:
    r, s = job.requester, job.spec
    return (
        job.id,
        str(r.platform),
        r.user_id,
        r.display_name,
        r.channel_id,
        r.server_id,
        r.reply_to,
        r.user_key,
        r.server_key,
        s.prompt,
        s.style,
        s.seed,
        s.steps,
        s.width,
        s.height,
        s.cfg,
        s.negative_prompt,
        str(job.state),
        job.attempts,
        job.created_at,
        job.started_at,
        job.finished_at,
        job.image_path,
        timings_to_json(job.timings),
        job.error,
        job.posted_message_id,
        job.parent_job_id,
        None,  # posted_channel_id
        job.posted_file_ref,
        None,  # deleted_at
        int(job.details_hidden),
        s.n,
        str(s.kind),
        s.init_image,
        s.strength,
        None if r.language is None else r.language.value,
        int(s.enhance),
        None if s.language is None else str(s.language),
        job.text,
    )


def job_from_row(row: sqlite3.Row) -> Job:
    requester = Requester(
        platform=Platform(row["platform"]),
        user_id=row["user_id"],
        display_name=row["display_name"],
        channel_id=row["channel_id"],
        server_id=row["server_id"],
        reply_to=row["reply_to"],
        language=None if row["language"] is None else Language(row["language"]),
    )
    spec = GenerationSpec(
        prompt=row["prompt"],
        style=row["style"],
        seed=row["seed"],
        steps=row["steps"],
        width=row["width"],
        height=row["height"],
        cfg=row["cfg"],
        negative_prompt=row["negative_prompt"],
        n=row["n"],
        kind=JobKind(row["kind"]),
        init_image=row["init_image"],
        strength=row["strength"],
        enhance=bool(row["enhance"]),
        language=None if row["vlm_language"] is None else Language(row["vlm_language"]),
    )
    return Job(
        id=row["id"],
        requester=requester,
        spec=spec,
        state=JobState(row["state"]),
        created_at=row["created_at"],
        attempts=row["attempts"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        image_path=row["image_path"],
        timings=timings_from_json(row["timings"]),
        error=row["error"],
        posted_message_id=row["posted_message_id"],
        parent_job_id=row["parent_job_id"],
        posted_file_ref=row["file_ref"],
        details_hidden=bool(row["details_hidden"]),
        verdict=verdict_from_row(row),
        text=row["text"],
    )
