"""The wire between the bot and its GPU workers: Redis keys, JSON payloads, heartbeats.

Shared by :mod:`engine.pool.remote` (the bot's side) and :mod:`engine.pool.worker`. Payloads are
JSON, never pickle. No torch here.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypeVar, cast

from arq.connections import RedisSettings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.domain import MAX_INPUT_BYTES, GenerationSpec, JobKind, StyleInfo, Timings
from bot.errors import EngineCrashed, GenerationFailed
from bot.i18n import msg
from bot.redis_url import parse_redis_url

T = TypeVar("T")

QUEUE = "turbobot:queue"
JOB_FUNCTION = "turbobot_generate"
WORKER_PREFIX = "turbobot:worker:"  # + worker id → JSON heartbeat, expires after 3 beats
EVENTS_PREFIX = "turbobot:events:"  # + arq id → list of JSON [step, total], then DONE
IMAGE_PREFIX = "turbobot:image:"  # + arq id → the JPEG bytes (+ ":k": image k of several)
INPUT_PREFIX = "turbobot:input:"  # + arq id → the init image's bytes (img2img kinds)
# A worker keeps the init image it was sent here, inside its own data dir, while it renders.
INPUT_DIR = "pool-inputs"
ATTEMPT_PREFIX = "turbobot:attempt:"  # + bot job id → counter for fresh arq ids
RESCAN_KEY = "turbobot:rescan"  # an epoch: workers rescan their styles when it grows
DONE = b"done"
READY = "ready"
RESTING = "resting"
KEEP_S = 3600  # leftovers (events, images, results) of a bot that vanished expire after this
LIVENESS_BEATS = 3
REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


class WorkerLost(EngineCrashed):
    """The worker running a job died or hung, or the job was lost: retryable, so the core
    runs it again, up to its attempt cap, on another worker."""


async def awaited(reply: Awaitable[T] | T) -> T:
    """redis-py types list commands as sync-or-async; on an asyncio client they are awaitable."""
    return await cast("Awaitable[T]", reply)


def json_dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def json_loads(raw: bytes | str) -> Any:
    return json.loads(raw)


def redis_settings(url: str) -> RedisSettings:
    """arq's connection settings from ``REDIS_URL`` (``redis://[:password@]host:port/db``).

    Parsed by :func:`bot.redis_url.parse_redis_url`, not arq's ``from_dsn``: its parser shows
    part of a password that contains ``#`` in its error message.
    """
    address = parse_redis_url(url)
    return RedisSettings(
        host=address.host,
        port=address.port,
        database=address.database,
        username=address.username,
        password=address.password,
        ssl=address.ssl,
        unix_socket_path=address.unix_socket_path,
        conn_retries=30,  # a worker may start before Redis does
    )


def spec_to_wire(spec: GenerationSpec) -> dict[str, Any]:
    return asdict(spec)


def spec_from_wire(data: dict[str, Any]) -> GenerationSpec:
    spec = GenerationSpec(**data)
    return replace(spec, kind=JobKind(spec.kind))  # JSON carries the enum as its string


def image_key(arq_id: str, k: int | None = None) -> str:
    """Where a job's JPEG waits in Redis: the posted one, or image ``k`` of several."""
    return IMAGE_PREFIX + arq_id if k is None else f"{IMAGE_PREFIX}{arq_id}:{k}"


def input_file(data_dir: Path, relative: str) -> Path:
    """The spec's init image on the bot's side; never a path outside the data dir."""
    root = data_dir.resolve()
    path = (root / relative).resolve()
    if Path(relative).is_absolute() or not path.is_relative_to(root):
        raise GenerationFailed(msg("engine.input_outside"))
    return path


def input_too_large(size: int) -> GenerationFailed:
    """An init image over the cap (the core's own input limit) never travels."""
    mib = 2**20
    return GenerationFailed(
        msg("core.image_too_large", size=f"{size / mib:.1f}", limit=MAX_INPUT_BYTES // mib)
    )


def timings_to_wire(timings: Timings) -> dict[str, Any]:
    return asdict(timings)


def timings_from_wire(data: dict[str, Any]) -> Timings:
    return Timings(**(data | {"step_ms": tuple(data.get("step_ms", ()))}))


@dataclass(frozen=True, slots=True)
class WorkerView:
    """One worker as its heartbeat describes it. ``busy`` is the arq id it runs, if any."""

    id: str
    host: str
    gpu: str
    state: str = READY
    busy: str | None = None
    jobs_done: int = 0
    failures: int = 0
    rescan_epoch: int = 0
    styles: tuple[StyleInfo, ...] = ()

    @property
    def ready(self) -> bool:
        return self.state == READY

    def to_wire(self) -> dict[str, Any]:
        return asdict(self) | {"styles": [asdict(s) for s in self.styles]}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> WorkerView:
        styles = tuple(StyleInfo(**s) for s in data.get("styles", ()))
        return cls(**(data | {"styles": styles}))


@dataclass(frozen=True, slots=True)
class PoolStats:
    """What ``/healthz`` and ``/metrics`` show about the pool (``RemoteExecutor.stats``)."""

    workers: tuple[WorkerView, ...]
    in_flight: int
    redis_ok: bool

    @property
    def ready_workers(self) -> int:
        return sum(w.ready for w in self.workers)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, without the style lists."""
        return {
            "redis_ok": self.redis_ok,
            "in_flight": self.in_flight,
            "ready_workers": self.ready_workers,
            "workers": [
                {
                    "id": w.id,
                    "host": w.host,
                    "gpu": w.gpu,
                    "state": w.state,
                    "busy": w.busy is not None,
                    "jobs_done": w.jobs_done,
                    "failures": w.failures,
                }
                for w in self.workers
            ],
        }
