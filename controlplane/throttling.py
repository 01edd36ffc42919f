"""Request throttles that keep counting when Redis (their counter store) is unreachable.

Refusing every request because the rate-limit counter is unreachable would take the API down with Redis, and
letting every request through would lift the limit exactly when the system is weakest. So while Redis cannot be
read, each process counts in its own memory: the limit still holds per process (looser by the number of
processes), and the request pays at most one bounded Redis timeout (controlplane/redis_clients.py).
"""

import logging

import redis
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

logger = logging.getLogger(__name__)

_in_memory = LocMemCache("throttle-fallback", {"OPTIONS": {"MAX_ENTRIES": 10_000}})


class _CacheTolerant:
    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except redis.RedisError:
            logger.warning("throttle counter store unreachable; counting in this process", extra={"scope": self.scope})
            self.cache = _in_memory
            return super().allow_request(request, view)


class ResilientAnonRateThrottle(_CacheTolerant, AnonRateThrottle):
    pass


class ResilientUserRateThrottle(_CacheTolerant, UserRateThrottle):
    pass
