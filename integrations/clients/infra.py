"""Infrastructure the deployment provides: Redis."""

from __future__ import annotations

import redis

from integrations.clients.base import ErrorCode, IntegrationError, ProviderClient


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
            self.with_retries(lambda url=url: self._ping(url), safe=True)
        return {"servers": len(urls)}

    def _ping(self, url: str) -> None:
        client = redis.Redis.from_url(url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout)
        try:
            if client.ping() is not True:
                self.malformed("PING did not answer PONG")
        except redis.AuthenticationError as exc:
            raise IntegrationError(ErrorCode.INTEGRATION_AUTH_FAILED, "Redis refused the credentials.",
                                   provider=self.provider) from exc
        except redis.TimeoutError as exc:
            raise IntegrationError(ErrorCode.INTEGRATION_TIMEOUT, "Redis did not answer PING in time.",
                                   provider=self.provider) from exc
        except redis.RedisError as exc:
            raise IntegrationError(ErrorCode.INTEGRATION_UNREACHABLE, "Redis could not be reached.",
                                   provider=self.provider) from exc
        finally:
            client.close()
