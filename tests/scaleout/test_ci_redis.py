"""In CI a missing ``redis-server`` must fail the run, not skip the scale-out tests."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from tests.scaleout.conftest import require_redis


def outcome(binary: str | None, env: Mapping[str, str]) -> str:
    """What ``require_redis`` did, caught here: a skip must not pass for a failure (pytest
    would report this very test as skipped, not failed)."""
    try:
        require_redis(binary, env)
    except pytest.fail.Exception as err:
        return f"fail: {err}"
    except pytest.skip.Exception as err:
        return f"skip: {err}"
    return "run"


@pytest.mark.parametrize("ci", ["true", "1", "TRUE"])
def test_a_missing_redis_fails_in_ci(ci: str) -> None:
    assert outcome(None, {"CI": ci}).startswith("fail: redis-server not installed")
    assert "CI must run the scale-out tests" in outcome(None, {"CI": ci})


@pytest.mark.parametrize("env", [{}, {"CI": ""}, {"CI": "false"}])
def test_a_missing_redis_skips_elsewhere(env: dict[str, str]) -> None:
    assert outcome(None, env).startswith("skip: redis-server not installed")


def test_an_installed_redis_is_used() -> None:
    assert outcome("/usr/bin/redis-server", {"CI": "true"}) == "run"
