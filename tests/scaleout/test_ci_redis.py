"""In CI a missing ``redis-server`` must fail the run, not skip the scale-out tests."""

from __future__ import annotations

import pytest

from tests.scaleout.conftest import require_redis


@pytest.mark.parametrize("ci", ["true", "1", "TRUE"])
def test_a_missing_redis_fails_in_ci(ci: str) -> None:
    with pytest.raises(pytest.fail.Exception, match="CI must run the scale-out tests"):
        require_redis(None, {"CI": ci})


@pytest.mark.parametrize("env", [{}, {"CI": ""}, {"CI": "false"}])
def test_a_missing_redis_skips_elsewhere(env: dict[str, str]) -> None:
    with pytest.raises(pytest.skip.Exception, match="redis-server not installed"):
        require_redis(None, env)


def test_an_installed_redis_is_used() -> None:
    require_redis("/usr/bin/redis-server", {"CI": "true"})  # neither skips nor fails
