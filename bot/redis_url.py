"""``REDIS_URL`` parsed by hand, so that no error can ever show the password.

``urllib.parse`` reads a ``#`` in the password as the start of a fragment and then fails on
the "port" with the first part of the password in its message (which was logged). Here the
user part is split off at the *last* ``@`` before anything else is looked at, and no error
message contains any part of the URL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote

_HIDDEN = "(the URL is not shown: it may contain a password)"
_SCHEMES = ("redis", "rediss", "unix")


class RedisUrlError(ValueError):
    """REDIS_URL cannot be used; the message says which part is wrong, never its value."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"REDIS_URL is not valid: {problem} {_HIDDEN}")


@dataclass(frozen=True, slots=True)
class RedisAddress:
    host: str = "localhost"
    port: int = 6379
    database: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl: bool = False
    unix_socket_path: str | None = None


def parse_redis_url(url: str) -> RedisAddress:
    """``redis[s]://[[user]:password@]host[:port][/db]`` or ``unix://[:password@]/path[?db=N]``."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        raise RedisUrlError("it must start with redis://, rediss:// or unix://.")
    userinfo, at, location = rest.rpartition("@")
    username, password = _credentials(userinfo) if at else (None, None)
    location, _, query = location.partition("?")
    database = _query_db(query)
    if scheme.lower() == "unix":
        if not location.startswith("/"):
            raise RedisUrlError("a unix:// URL needs an absolute socket path.")
        return RedisAddress(
            database=database or 0,
            username=username,
            password=password,
            unix_socket_path=unquote(location),
        )
    hostport, _, path = location.partition("/")
    host, port = _host_port(hostport)
    if database is None:
        database = _number(path, "the database number", 0, 1_000_000) if path else 0
    return RedisAddress(
        host=host,
        port=port,
        database=database,
        username=username,
        password=password,
        ssl=scheme.lower() == "rediss",
    )


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    user, colon, password = userinfo.partition(":")
    return (unquote(user) or None), (unquote(password) if colon else None)


def _host_port(hostport: str) -> tuple[str, int]:
    if hostport.startswith("["):  # [IPv6]:port
        host, bracket, tail = hostport[1:].partition("]")
        if not bracket or (tail and not tail.startswith(":")):
            raise RedisUrlError("the IPv6 address must be written as [address]:port.")
        port_text = tail[1:]
    else:
        host, _, port_text = hostport.partition(":")
    if not host or any(ch in host for ch in "#@ "):
        raise RedisUrlError("the host is missing or not a host name.")
    port = _number(port_text, "the port", 1, 65535) if port_text else 6379
    return host, port


def _query_db(query: str) -> int | None:
    values = parse_qs(query).get("db") if query else None
    return _number(values[0], "the database number", 0, 1_000_000) if values else None


def _number(text: str, what: str, low: int, high: int) -> int:
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise RedisUrlError(f"{what} must be a whole number from {low} to {high}.")
    return int(text)
