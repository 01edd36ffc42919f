"""Every Redis client the web and worker processes open: a bounded timeout, no retry, and a short memory of failure.

A hung Redis (stopped by SIGSTOP, a full disk, a partition) accepts the TCP connection and never answers, so each
command costs its whole socket timeout. One request touches Redis several times (its throttle, the breaker of each
provider, the status probe), so after a command to a server times out or cannot connect, the process treats that
server as unreachable for ``REDIS_RETRY_AFTER_SECONDS``: every further command fails at once with
``redis.ConnectionError``, which each caller already handles as "unreachable" (a throttle counts in memory, a
breaker reads ``unknown``, work that needs the broker is refused). A request pays one bounded timeout, not one per
use. The status probe (``probe``) always asks the server itself, and a success there ends the memory early.

The memory is per server (host, port, socket path), so one unreachable URL never marks another one down.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from django.conf import settings
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_down_until: dict[tuple, float] = {}


def _server_of(pool: redis.ConnectionPool) -> tuple:
    kwargs = pool.connection_kwargs
    return kwargs.get("host"), kwargs.get("port"), kwargs.get("path")


def _failed(server: tuple, exc: Exception) -> None:
    with _lock:
        first = time.monotonic() >= _down_until.get(server, 0.0)
        _down_until[server] = time.monotonic() + settings.REDIS_RETRY_AFTER_SECONDS
    if first:
        logger.warning(
            "redis unreachable; not asked again for a while",
            extra={
                "server": ":".join(str(p) for p in server if p),
                "error": type(exc).__name__,
                "retry_after_seconds": settings.REDIS_RETRY_AFTER_SECONDS,
            },
        )


def _answered(server: tuple) -> None:
    if server in _down_until:
        with _lock:
            _down_until.pop(server, None)


def _known_down(server: tuple) -> bool:
    return time.monotonic() < _down_until.get(server, 0.0)


def forget_failures() -> None:
    """Ask every server again on the next command (tests that start and stop their own Redis)."""
    with _lock:
        _down_until.clear()


class BoundedRedis(redis.Redis):
    """redis.Redis that refuses at once to talk to a server that failed moments ago, and remembers failures."""

    def execute_command(self, *args, **options):
        server = _server_of(self.connection_pool)
        if _known_down(server):
            raise redis.ConnectionError("Redis did not answer moments ago; not asked again yet.")
        try:
            result = super().execute_command(*args, **options)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            _failed(server, exc)
            raise
        _answered(server)
        return result


def bounded_options(timeout: float | None = None) -> dict:
    """Connection options of every Redis client: connect and read both bounded, and no retry (a retry against a
    hung server only multiplies the wait)."""
    timeout = settings.REDIS_TIMEOUT_SECONDS if timeout is None else timeout
    return {"socket_timeout": timeout, "socket_connect_timeout": timeout, "retry": Retry(NoBackoff(), 0)}


def client(url: str | None = None, *, timeout: float | None = None) -> BoundedRedis:
    """A client for ``url`` (default ``REDIS_URL``); the caller closes it."""
    return BoundedRedis.from_url(url or settings.REDIS_URL, **bounded_options(timeout))


def probe(url: str | None = None, *, timeout: float) -> bool:
    """PING the server itself, whatever the memory says; True when it answered within ``timeout``."""
    connection = redis.Redis.from_url(url or settings.REDIS_URL, **bounded_options(timeout))
    server = _server_of(connection.connection_pool)
    try:
        connection.ping()
    except redis.RedisError as exc:
        if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
            _failed(server, exc)
        return False
    finally:
        connection.close()
    _answered(server)
    return True


class RedisCacheClient(DjangoRedisCacheClient):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._client = BoundedRedis
        self._pool_options.update(bounded_options())


class RedisCache(DjangoRedisCache):
    """Django's Redis cache on BoundedRedis, so cache users (the throttles) share the memory of failure."""

    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient


def _is_redis(url: str) -> bool:
    return url.startswith(("redis://", "rediss://", "unix://"))


def known_down(url: str) -> bool:
    """True while the server at ``url`` is remembered as unreachable (no command is sent to find out); always False
    for a broker that is not Redis, whose failures this module does not see."""
    return _is_redis(url) and _known_down(_server_of(redis.ConnectionPool.from_url(url)))


def remember_failure(url: str, exc: Exception) -> None:
    """A client outside this module (Celery's kombu) could not reach ``url``; nothing to remember if it is not
    Redis."""
    if _is_redis(url):
        _failed(_server_of(redis.ConnectionPool.from_url(url)), exc)
