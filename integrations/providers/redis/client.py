"""Infrastructure the deployment provides: Redis."""

from __future__ import annotations

import redis

from controlplane import redis_clients
from controlplane.errors import ErrorCode
from integrations.providers.base import IntegrationError, ProviderClient


class RedisClient(ProviderClient):
    """PING each configured Redis (the cache/broker, and the queue's when it is separate)."""

    provider = "redis"

    def default_base_url(self) -> str:
        return ""

    def verify(self) -> dict:
        return self.run("verify", self._ping_all)

    def _ping_all(self) -> dict:
        urls = [self.credential("REDIS_URL")]
        if self.credentials.get("QUEUE_REDIS_URL"):
            urls.append(self.credentials["QUEUE_REDIS_URL"])
        for url in urls:
            self._ping(url)
        return {"servers": len(urls)}

    def _ping(self, url: str) -> None:
        """One PING within REDIS_TIMEOUT_SECONDS, not retried: a Redis that does not answer that is down for every
        use we make of it, and retries against a hung one pushed a verify past the web server's timeout."""
        client = redis.Redis.from_url(url, **redis_clients.bounded_options())
        try:
            if client.ping() is not True:
                self.malformed("PING did not answer PONG")
        except redis.AuthenticationError as exc:
            raise IntegrationError(
                ErrorCode.INTEGRATION_AUTH_FAILED, "Redis refused the credentials.", provider=self.provider
            ) from exc
        except redis.TimeoutError as exc:
            raise IntegrationError(
                ErrorCode.INTEGRATION_TIMEOUT, "Redis did not answer PING in time.", provider=self.provider
            ) from exc
        except redis.RedisError as exc:
            raise IntegrationError(
                ErrorCode.INTEGRATION_UNREACHABLE, "Redis could not be reached.", provider=self.provider
            ) from exc
        finally:
            client.close()
