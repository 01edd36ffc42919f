"""Request throttles that keep answering when Redis (their counter store) is down, and the one on failed API logins.

Refusing every request because the rate-limit counter is unreachable would take the status endpoint down with
Redis; letting the request through and logging is the lesser harm.
"""

import logging
import math

from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle

logger = logging.getLogger(__name__)


class _CacheTolerant:
    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception:  # redis-py raises several unrelated classes for "unreachable"
            logger.warning("throttle counter store unreachable; request allowed", extra={"scope": self.scope})
            return True


class ResilientAnonRateThrottle(_CacheTolerant, AnonRateThrottle):
    pass


class ResilientUserRateThrottle(_CacheTolerant, UserRateThrottle):
    pass


class FailedAuthenticationThrottle(SimpleRateThrottle):
    """Counts failed credential checks per client IP (rate ``auth_failure``), not requests.

    Unlike DRF's throttles, which count every request, this one is asked twice: ``wait_seconds`` before the
    credentials are checked (an IP over the limit is refused before its next guess is even looked at, so a right
    guess and a wrong one answer alike), and ``record_failure`` after a check failed. Like the throttles above it lets
    the request through when its counter store is unreachable.
    """

    scope = "auth_failure"

    def get_cache_key(self, request, view=None):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def _load(self, request) -> None:
        self.key = self.get_cache_key(request)
        self.now = self.timer()
        self.history = [t for t in self.cache.get(self.key, []) if t > self.now - self.duration]

    def wait_seconds(self, request) -> int | None:
        """Seconds until this IP may try again, or None when it may try now."""
        try:
            self._load(request)
        except Exception:  # noqa: BLE001 - see _CacheTolerant
            logger.warning("auth failure counter unreachable; credentials checked", extra={"scope": self.scope})
            return None
        if len(self.history) < self.num_requests:
            return None
        return max(1, math.ceil(self.history[-1] + self.duration - self.now))

    def record_failure(self, request) -> None:
        try:
            self._load(request)
            self.history.insert(0, self.now)
            self.cache.set(self.key, self.history, self.duration)
        except Exception:  # noqa: BLE001 - see _CacheTolerant
            logger.warning("auth failure counter unreachable; failure not counted", extra={"scope": self.scope})
