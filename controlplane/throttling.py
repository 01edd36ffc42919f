"""Request throttles that keep counting when Redis (their counter store) is unreachable, and the one on failed API
logins.

Refusing every request because the rate-limit counter is unreachable would take the API down with Redis, and
letting every request through would lift the limit exactly when the system is weakest. So while Redis cannot be
read, each process counts in its own memory: the limit still holds per process (looser by the number of
processes), and the request pays at most one bounded Redis timeout (controlplane/redis_clients.py).
"""

import logging
import math

import redis
from django.conf import settings
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.throttling import AnonRateThrottle, BaseThrottle, SimpleRateThrottle, UserRateThrottle

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


class FailedAuthenticationThrottle(SimpleRateThrottle):
    """Counts failed credential checks per client IP (rate ``auth_failure``), not requests.

    Unlike DRF's throttles, which count every request, this one is asked twice: ``wait_seconds`` before the
    credentials are checked (an IP over the limit is refused before its next guess is even looked at, so a right
    guess and a wrong one answer alike), and ``record_failure`` after a check failed.
    """

    scope = "auth_failure"

    def get_cache_key(self, request, view=None):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def _load(self, request) -> None:
        self.key = self.get_cache_key(request)
        self.now = self.timer()
        self.history = [t for t in self.cache.get(self.key, []) if t > self.now - self.duration]

    def _counted(self, fn):
        """Run ``fn`` against the shared counter, or against this process's memory while Redis cannot be read, as
        the throttles above do: a guesser gains nothing from an outage."""
        try:
            return fn()
        except redis.RedisError:
            logger.warning("auth failure counter unreachable; counting in this process", extra={"scope": self.scope})
            self.cache = _in_memory
            return fn()

    def wait_seconds(self, request) -> int | None:
        """Seconds until this IP may try again, or None when it may try now."""
        self._counted(lambda: self._load(request))
        if len(self.history) < self.num_requests:
            return None
        return max(1, math.ceil(self.history[-1] + self.duration - self.now))

    def record_failure(self, request) -> None:
        def record():
            self._load(request)
            self.history.insert(0, self.now)
            self.cache.set(self.key, self.history, self.duration)

        self._counted(record)


def client_ident(request) -> str:
    """The client address as every throttle here sees it (DRF's: X-Forwarded-For behind NUM_PROXIES proxies, else
    REMOTE_ADDR), for limits keyed by address outside a throttle class."""
    return BaseThrottle().get_ident(request)


def user_ident(user) -> str:
    """A user's key in a counter: id and join time, so a database that reuses an id (a test run, a restore) does not
    inherit another user's count."""
    return f"{user.pk}-{int(user.date_joined.timestamp() * 1_000_000)}"


class SecondFactorFailureThrottle(FailedAuthenticationThrottle):
    """Counts wrong second-factor codes per user (``TWO_FACTOR_FAILURE_RATE``), in Redis and so outside the request's
    transaction: a refused API call rolls its transaction back, django-otp's own per-device failure count with it,
    and a stolen token could otherwise guess six digits forever. Asked before a code is checked, like the class
    above."""

    scope = "second_factor_failure"

    def __init__(self, user):
        self.user = user
        super().__init__()

    def get_rate(self):
        return settings.TWO_FACTOR_FAILURE_RATE

    def get_cache_key(self, request=None, view=None):
        return self.cache_format % {"scope": self.scope, "ident": user_ident(self.user)}


class KeyedRateLimit(FailedAuthenticationThrottle):
    """A rate on one named thing (an SMS send per user, per client IP): ``wait_seconds`` then ``record_failure``
    (here: a use), counted like the throttles above so an unreachable Redis falls back to this process's memory."""

    def __init__(self, scope: str, ident: str, rate: str):
        self.scope, self.ident, self.rate = scope, ident, rate
        super().__init__()

    def parse_rate(self, rate):
        """DRF's "N/period" (second, minute, hour, day), and "N/<seconds>s" for a window of any length."""
        number, period = rate.split("/")
        if period[:-1].isdigit() and period.endswith("s"):
            return int(number), int(period[:-1])
        return super().parse_rate(rate)

    def get_cache_key(self, request=None, view=None):
        return self.cache_format % {"scope": self.scope, "ident": self.ident}
