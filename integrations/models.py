"""Operator-entered credentials (encrypted), verification results and proof-of-use events, all per tenant."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from controlplane.models import TenantOwnedModel


class IntegrationCredential(TenantOwnedModel):
    """One credential field of one provider, encrypted with Fernet (integrations.crypto); never shown back."""

    provider = models.CharField(max_length=32)
    name = models.CharField(max_length=64, help_text="The credential's documented name, e.g. TRADOVATE_CID.")
    ciphertext = models.TextField()
    last4 = models.CharField(max_length=4, blank=True, help_text="Empty when the value is too short to hint at.")
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    set_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "provider", "name"], name="credential_unique_per_tenant")
        ]
        ordering = ["provider", "name"]

    def __str__(self) -> str:
        return f"{self.provider}.{self.name}"


class IntegrationVerification(TenantOwnedModel):
    """The stored result of one verify call; the newest per provider is the provider's connection state."""

    class Status(models.TextChoices):
        OK = "ok", "Connected"
        FAILED = "failed", "Failed"

    provider = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=Status.choices)
    error_code = models.CharField(max_length=64, blank=True)
    message = models.CharField(max_length=500, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    source = models.CharField(max_length=16, blank=True, help_text="Where the credentials came from.")
    permissions = models.JSONField(
        null=True,
        blank=True,
        help_text="What a venue said the key may do (can_trade, can_withdraw, can_transfer, where it was read), or "
        '"unknown" when its API cannot tell; empty for providers that trade nothing or a verify that '
        "failed before the permissions were read.",
    )
    key_fingerprint = models.CharField(
        max_length=64,
        blank=True,
        help_text="A keyed one-way digest of the credentials verified, so an owner's confirmation stays with this "
        "key; never shown and never reversible.",
    )
    trace_id = models.CharField(max_length=64)
    verified_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-verified_at", "-id"]
        indexes = [models.Index(fields=["tenant", "provider", "-verified_at"], name="verification_latest_idx")]

    def __str__(self) -> str:
        return f"{self.provider} {self.status} at {self.verified_at:%Y-%m-%d %H:%M:%S}"


class KeyPermissionConfirmation(TenantOwnedModel):
    """An owner's word that a venue key whose permissions the venue's API cannot report is trade-only.

    It holds for the key it was given for (``key_fingerprint``) while later verifications report the same
    ``permissions``; a new key or a re-verify that reads other permissions voids it (integrations.permissions)."""

    provider = models.CharField(max_length=32)
    verification = models.ForeignKey(
        IntegrationVerification,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The verification whose key the owner confirmed.",
    )
    key_fingerprint = models.CharField(max_length=64)
    permissions = models.JSONField(help_text="What that verification reported when the owner confirmed.")
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    confirmed_at = models.DateTimeField()
    trace_id = models.CharField(max_length=64)

    class Meta:
        ordering = ["-confirmed_at", "-id"]
        indexes = [models.Index(fields=["tenant", "provider", "-confirmed_at"], name="key_confirmation_latest_idx")]

    def __str__(self) -> str:
        return f"{self.provider} key confirmed trade-only at {self.confirmed_at:%Y-%m-%d %H:%M:%S}"


class IntegrationUsageEvent(TenantOwnedModel):
    """Proof of use: one row per operation a provider client performed, whichever code path caused it."""

    class Status(models.TextChoices):
        OK = "ok", "OK"
        ERROR = "error", "Error"
        CIRCUIT_OPEN = "circuit_open", "Refused: circuit open"

    provider = models.CharField(max_length=32)
    operation = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices)
    error_code = models.CharField(max_length=64, blank=True)
    latency_ms = models.PositiveIntegerField()
    # A plain id, not a foreign key: bots is a higher layer than integrations.
    bot_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    trace_id = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "provider", "-created_at"], name="usage_provider_recent_idx"),
            # A card's last success and last failure: without the status a provider that never failed walks all
            # of its events to say so.
            models.Index(fields=["tenant", "provider", "status", "-created_at"], name="usage_provider_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}.{self.operation} {self.status}"
