"""Request throttles that keep answering when Redis (their counter store) is down.

Refusing every request because the rate-limit counter is unreachable would take the status endpoint down with
Redis; letting the request through and logging is the lesser harm.
"""

import logging

from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

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
