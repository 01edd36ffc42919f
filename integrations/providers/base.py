"""The one base every provider client stands on: timeouts, retries for safe calls, a circuit breaker and
proof-of-use.

A client's public methods run through :meth:`ProviderClient.operation`, which records one
``IntegrationUsageEvent`` per operation (ok or error, latency, bot, trace id), refuses calls while the
provider's breaker is open, and maps every failure to one :class:`IntegrationError` with an ``ErrorCode``.
Inside an operation, :meth:`ProviderClient.request` makes the HTTP calls; it retries with backoff only when the
call is safe to repeat (reads, token requests) and the failure is transient.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import pybreaker
import redis
import requests
from django.conf import settings
from django.db import transaction
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from controlplane import redis_clients, tenancy
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.trace import current_trace_id
from integrations.registry import Provider, get_provider

logger = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_CODES = {ErrorCode.INTEGRATION_TIMEOUT, ErrorCode.INTEGRATION_UNREACHABLE}


class IntegrationError(ControlPlaneError):
    """A provider call failed; ``permanent`` says whether repeating the same call could succeed.

    ``sent`` is False only when the request provably never left (connection refused, connect timeout); order
    code reads it to tell "not placed" from "maybe placed". ``retry_after`` is the provider's wait in seconds.
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str | None = None,
        *,
        provider: str,
        sent: bool | None = None,
        retry_after: float | None = None,
        **kwargs,
    ) -> None:
        details = kwargs.pop("details", None) or {"provider": provider}
        if retry_after is not None:
            details = {**details, "retry_after": retry_after}
        super().__init__(code, message, details=details, **kwargs)
        self.provider = provider
        self.sent = sent
        self.retry_after = retry_after

    @property
    def permanent(self) -> bool:
        return self.code not in TRANSIENT_CODES and self.code != ErrorCode.INTEGRATION_RATE_LIMITED


def _redis_client() -> redis.Redis:
    """Bounded, and refusing at once while Redis failed moments ago: a hung Redis costs a request one timeout, not
    one per provider's breaker (each of which reads and writes several keys)."""
    return redis_clients.client()


def _breaker_namespace(provider: str, tenant_id: int) -> str:
    return f"cp:integrations:breaker:{tenant_id}:{provider}"


def breaker_for(provider: str, tenant_id: int) -> pybreaker.CircuitBreaker:
    """The provider's breaker for a tenant, its state shared by every process through Redis.

    With Redis unreachable the breaker works from memory for this process (calls are not refused for that).
    """
    namespace = _breaker_namespace(provider, tenant_id)
    try:
        storage = pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, _redis_client(), namespace=namespace)
    except redis.RedisError:
        storage = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
    return pybreaker.CircuitBreaker(
        fail_max=settings.INTEGRATION_BREAKER_FAIL_MAX,
        reset_timeout=settings.INTEGRATION_BREAKER_RESET_SECONDS,
        state_storage=storage,
        name=namespace,
        throw_new_error_on_trip=False,
        # Only failures that say the provider is unwell open the circuit; a refused key does not.
        exclude=[lambda exc: isinstance(exc, IntegrationError) and exc.code not in TRANSIENT_CODES],
    )


BREAKER_UNKNOWN = "unknown"


def breaker_states(providers: list[str], tenant_id: int) -> dict[str, str] | None:
    """closed, open or half-open per provider, read from Redis in one round trip; None when Redis cannot be read.

    Read directly rather than through pybreaker's storage: that one logs a Redis error and answers its fallback
    state (closed), which would report a breaker nobody could read as closed.
    """
    client = _redis_client()
    try:
        base = pybreaker.CircuitRedisStorage.BASE_NAMESPACE  # the key layout pybreaker's Redis storage writes
        raw = client.mget([f"{_breaker_namespace(p, tenant_id)}:{base}:state" for p in providers])
    except redis.RedisError:
        return None
    finally:
        client.close()
    # No key: the breaker never recorded a failure, so it is closed (pybreaker's initial state).
    return {p: (value.decode() if value else pybreaker.STATE_CLOSED) for p, value in zip(providers, raw)}


def breaker_state(provider: str, tenant_id: int) -> str:
    """closed, open or half-open; ``unknown`` when Redis cannot say."""
    states = breaker_states([provider], tenant_id)
    return BREAKER_UNKNOWN if states is None else states[provider]


def _never_connected(exc: requests.RequestException) -> bool:
    """True when the connection itself failed, so no byte of the request reached the provider."""
    import urllib3.exceptions

    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(exc, requests.ConnectionError) and isinstance(
        reason, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.NameResolutionError, ConnectionRefusedError)
    )


class ProviderClient:
    """Base of every provider client. Subclasses set ``provider`` and implement ``verify()``."""

    provider: str = ""

    def __init__(
        self,
        *,
        credentials: Mapping[str, str],
        base_url: str | None = None,
        bot_id: int | None = None,
        timeout: float | None = None,
        source: str = "",
    ) -> None:
        self.spec: Provider = get_provider(self.provider)
        self.credentials = dict(credentials)
        self.base_url = base_url or settings.INTEGRATION_BASE_URLS.get(self.provider) or self.default_base_url()
        self.base_url = self.base_url.rstrip("/")
        self.bot_id = bot_id
        self.timeout = timeout if timeout is not None else settings.INTEGRATION_TIMEOUT_SECONDS
        self.source = source
        self.session = requests.Session()
        self.tenant_id = tenancy.require_tenant_id()

    # --- configuration -----------------------------------------------------------------------------------

    def default_base_url(self) -> str:
        urls = self.spec.base_urls
        return urls.get("default") or next(iter(urls.values()), "")

    def credential(self, name: str) -> str:
        value = self.credentials.get(name, "")
        if not value:
            raise IntegrationError(
                ErrorCode.INTEGRATION_KEY_MISSING,
                f"{name} is not set for {self.provider}.",
                provider=self.provider,
                details={"provider": self.provider, "missing_env_vars": [name]},
            )
        return value

    # --- the operation wrapper: breaker, usage event, error mapping ----------------------------------------

    def run(self, operation: str, fn: Callable[[], T]) -> T:
        """Run one operation of this client (one or more HTTP calls) under the provider's breaker, recording
        one usage event for it whatever happens."""
        breaker = breaker_for(self.provider, self.tenant_id)
        started = time.monotonic()
        called = False

        def guarded() -> T:
            nonlocal called
            called = True
            return fn()

        try:
            result = breaker.call(guarded)
        except pybreaker.CircuitBreakerError as exc:
            self._record(operation, "circuit_open", ErrorCode.INTEGRATION_UNREACHABLE, 0)
            raise IntegrationError(
                ErrorCode.INTEGRATION_UNREACHABLE,
                f"{self.spec.label} calls are suspended: the circuit breaker opened after repeated failures.",
                provider=self.provider,
            ) from exc
        except IntegrationError as exc:
            self._record(operation, "error", exc.code, self._elapsed_ms(started))
            raise
        except Exception as exc:  # a bug or an SDK surprise still leaves proof of the attempt
            if called:
                self._record(operation, "error", ErrorCode.INTEGRATION_BAD_RESPONSE, self._elapsed_ms(started))
            raise IntegrationError(
                ErrorCode.INTEGRATION_BAD_RESPONSE,
                f"{self.spec.label} call failed unexpectedly ({type(exc).__name__}).",
                provider=self.provider,
            ) from exc
        self._record(operation, "ok", None, self._elapsed_ms(started))
        return result

    @staticmethod
    def _elapsed_ms(started: float) -> int:
        return int((time.monotonic() - started) * 1000)

    def _record(self, operation: str, status: str, code: ErrorCode | None, latency_ms: int) -> None:
        from integrations.models import IntegrationUsageEvent

        with transaction.atomic():
            IntegrationUsageEvent.objects.create(
                tenant_id=self.tenant_id,
                provider=self.provider,
                operation=operation,
                status=status,
                error_code=str(code) if code else "",
                latency_ms=max(latency_ms, 0),
                bot_id=self.bot_id,
                trace_id=current_trace_id(),
            )

    # --- HTTP ---------------------------------------------------------------------------------------------

    def request(self, method: str, path: str, *, safe: bool, **kwargs) -> requests.Response:
        """One HTTP call with the client's timeout; retried with backoff when ``safe`` and the failure is transient."""
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        kwargs.setdefault("timeout", self.timeout)
        return self.with_retries(lambda: self._send(method, url, **kwargs), safe=safe)

    @staticmethod
    def with_retries(fn: Callable[[], T], *, safe: bool) -> T:
        """Repeat ``fn`` with exponential backoff on timeouts and unreachability, only if it is safe to repeat."""
        attempts = settings.INTEGRATION_RETRY_ATTEMPTS if safe else 1
        retrying = Retrying(
            stop=stop_after_attempt(max(attempts, 1)),
            wait=wait_exponential(multiplier=settings.INTEGRATION_RETRY_BACKOFF_SECONDS, max=8),
            retry=retry_if_exception(lambda exc: isinstance(exc, IntegrationError) and exc.code in TRANSIENT_CODES),
            reraise=True,
        )
        return retrying(fn)

    def transport_error(self, exc: requests.RequestException, *, timeout) -> IntegrationError:
        """A request that got no answer, as our code, saying whether any of it may have reached the provider (a
        timeout after connecting may have been acted on; a refused connection was not): the one mapping for our
        own requests and for an official SDK's (Twilio's) that sends through requests."""
        if isinstance(exc, requests.Timeout):
            return IntegrationError(
                ErrorCode.INTEGRATION_TIMEOUT,
                f"{self.spec.label} did not answer within {timeout}s.",
                provider=self.provider,
                sent=not isinstance(exc, requests.ConnectTimeout),
            )
        return IntegrationError(
            ErrorCode.INTEGRATION_UNREACHABLE,
            f"{self.spec.label} could not be reached ({type(exc).__name__}).",
            provider=self.provider,
            sent=not _never_connected(exc),
        )

    def _send(self, method: str, url: str, **kwargs) -> requests.Response:
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.RequestException as exc:
            raise self.transport_error(exc, timeout=kwargs["timeout"]) from exc
        self.raise_for_status(response)
        return response

    def raise_for_status(self, response: requests.Response) -> None:
        status = response.status_code
        if status in (401, 403):
            raise IntegrationError(
                ErrorCode.INTEGRATION_AUTH_FAILED,
                f"{self.spec.label} refused the credentials (HTTP {status}).",
                provider=self.provider,
            )
        if status == 429:
            raise IntegrationError(
                ErrorCode.INTEGRATION_RATE_LIMITED,
                f"{self.spec.label} is rate limiting us (HTTP 429).",
                provider=self.provider,
                sent=True,
                retry_after=self.retry_after_of(response),
            )
        if status >= 500:
            raise IntegrationError(
                ErrorCode.INTEGRATION_UNREACHABLE, f"{self.spec.label} failed (HTTP {status}).", provider=self.provider
            )
        if status >= 400:
            raise IntegrationError(
                ErrorCode.INTEGRATION_BAD_RESPONSE,
                f"{self.spec.label} rejected the request (HTTP {status}).",
                provider=self.provider,
            )

    def retry_after_of(self, response: requests.Response) -> float | None:
        """Retry-After in seconds (only the delta-seconds form; an HTTP date counts as unknown)."""
        try:
            return max(float(response.headers.get("Retry-After", "")), 0.0)
        except ValueError:
            return None

    def json(self, response: requests.Response, *, expect: type = dict) -> Any:
        """The body as JSON of the expected type, or INTEGRATION_BAD_RESPONSE."""
        try:
            body = response.json()
        except ValueError as exc:
            raise IntegrationError(
                ErrorCode.INTEGRATION_BAD_RESPONSE,
                f"{self.spec.label} answered with a body that is not JSON.",
                provider=self.provider,
            ) from exc
        if not isinstance(body, expect):
            self.malformed(f"expected a JSON {expect.__name__}")
        return body

    def malformed(self, what: str):
        raise IntegrationError(
            ErrorCode.INTEGRATION_BAD_RESPONSE,
            f"{self.spec.label} answered in an unexpected shape: {what}.",
            provider=self.provider,
        )

    # --- what each client provides ------------------------------------------------------------------------

    def verify(self) -> dict:
        """A real, non-destructive call that proves the credentials work; returns a short summary (no secrets).

        A broker's or venue's summary carries ``permissions``: what the venue says the key may do (``can_trade``,
        ``can_withdraw``, ``can_transfer``, ``source``, ``reported``) or ``"unknown"`` when its API cannot tell;
        integrations.permissions judges it."""
        raise NotImplementedError

    # How to make a key that passes, in the venue's own terms (shown when a key is too powerful).
    trade_only_key_fix = "Create a key with view and trade permissions only, enter it in the console and verify."
