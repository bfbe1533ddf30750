"""REDIS_URL is parsed without ever showing the password (issue 15, item 7)."""

from __future__ import annotations

import logging

import pytest

from bot.redis_url import RedisAddress, parse_redis_url
from engine.pool.wire import redis_settings

# '#', '@', '/' and '?' in it, as generated passwords have; every piece between them is
# looked for in what is shown.
PASSWORD = "Xq7Zk#Vb9Wp@Lm2Ns/Tr5Yu?Hj3Gf"
PARTS = ("Xq7Zk", "Vb9Wp", "Lm2Ns", "Tr5Yu", "Hj3Gf")

GOOD = [
    (
        f"redis://:{PASSWORD}@cache.local:6380/2",
        RedisAddress("cache.local", 6380, 2, None, PASSWORD),
    ),
    (
        f"rediss://bot:{PASSWORD}@[::1]:6379",
        RedisAddress("::1", 6379, 0, "bot", PASSWORD, ssl=True),
    ),
    ("redis://localhost", RedisAddress()),
    ("redis://h:1/0?db=3", RedisAddress("h", 1, 3)),
    (
        f"unix://:{PASSWORD}@/run/redis.sock?db=1",
        RedisAddress(database=1, password=PASSWORD, unix_socket_path="/run/redis.sock"),
    ),
]
BAD = [
    f"redis://:{PASSWORD}@host:port/0",
    f"redis://:{PASSWORD}@host:99999",
    f"redis://:{PASSWORD}@host:6379/db",
    f"redis://:{PASSWORD}@:6379",
    f"redis://:{PASSWORD}@[::1/0",
    f"redis://:{PASSWORD}",  # no '@': the password would be read as the host
    f"redis://{PASSWORD}:6379",
    f"http://:{PASSWORD}@host",
    f":{PASSWORD}@host",
    f"unix://:{PASSWORD}@relative/sock",
    f"redis://:{PASSWORD}@host:6379?db=x",
]


@pytest.mark.parametrize(("url", "expected"), GOOD)
def test_urls_are_parsed(url: str, expected: RedisAddress) -> None:
    assert parse_redis_url(url) == expected
    settings = redis_settings(url)
    assert (settings.host, settings.port, settings.database, settings.password) == (
        expected.host,
        expected.port,
        expected.database,
        expected.password,
    )


@pytest.mark.parametrize("url", BAD)
def test_a_bad_url_never_shows_the_password(url: str, caplog: pytest.LogCaptureFixture) -> None:
    """A '#' in the password leaked its first part in a logged ValueError."""
    log = logging.getLogger("turbobot.test")
    with caplog.at_level(logging.DEBUG):
        try:
            redis_settings(url)
        except ValueError as caught:
            log.exception("could not start")  # what the bot and the worker do with it
            error = caught
        else:
            pytest.fail("a bad REDIS_URL was accepted")
    assert "could not start" in caplog.text
    shown = [str(error), repr(error), caplog.text]
    for text in shown:
        for part in PARTS:
            assert part not in text, (part, text)
    assert str(error).startswith("REDIS_URL is not valid")
    assert "not shown" in str(error)


def test_the_address_repr_hides_the_password() -> None:
    assert PASSWORD not in repr(parse_redis_url(f"redis://:{PASSWORD}@h"))
