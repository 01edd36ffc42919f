"""Tenancy, the audit log and process heartbeats: the ground every other app stands on."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from knox.models import AbstractAuthToken

from controlplane import tenancy


class TenantScopedManager(models.Manager):
    """Rows of the current tenant only; no tenant in context means no rows (fail closed)."""

    def get_queryset(self):
        queryset = super().get_queryset()
        tenant_id = tenancy.current_tenant_id()
        if tenant_id is None:
            return queryset.none()
        return queryset.filter(tenant_id=tenant_id)


class TenantOwnedModel(models.Model):
    """Base of every tenant-owned model. Its migration must add ``EnableTenantRLS`` (controlplane.rls);
    tests/controlplane/test_rls.py fails for any table with ``tenant_id`` and no policy."""

    tenant = models.ForeignKey("controlplane.Tenant", on_delete=models.PROTECT, related_name="+")

    objects = TenantScopedManager()
    # Still under RLS: "all tenants" here means every tenant the database lets this transaction see.
    unscoped = models.Manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.tenant_id is None and not self._meta.get_field("tenant").null:
            self.tenant_id = tenancy.require_tenant_id()
        super().save(*args, **kwargs)


class Tenant(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "ACTIVE", "Active"
        SUSPENDED = "SUSPENDED", "Suspended"

    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    # Set by an owner (controlplane.twofactor.tenant_security_set): members without a device reach only enrolment.
    require_two_factor = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Membership(TenantOwnedModel):
    """A user's role in a tenant. Its RLS policy also lets users see their own memberships in every tenant."""

    class Role(models.TextChoices):
        VIEWER = "viewer", "Viewer"
        OPERATOR = "operator", "Operator"
        OWNER = "owner", "Owner"

    RANK = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.OWNER: 3}

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_user_per_tenant")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant_id} ({self.role})"

    def allows(self, role: str) -> bool:
        return self.RANK[self.role] >= self.RANK[role]


class Invitation(TenantOwnedModel):
    """An owner's offer of a role in their tenant; only the invited user's acceptance makes it a membership.

    ``invitee`` is what the owner typed (a username or an email) and is all the tenant ever sees of the target, so an
    invitation for a name nobody has looks the same as any other. ``invited_user`` is who it resolved to when it was
    made (null when nobody matched: it then expires unanswered). Its RLS policy also shows a user the invitations
    addressed to them, in every tenant, so they can find and answer them; writes need the tenant in context.
    """

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        ACCEPTED = "ACCEPTED", "Accepted"
        DECLINED = "DECLINED", "Declined"
        REVOKED = "REVOKED", "Revoked"

    invitee = models.CharField(max_length=254, help_text="The username or email the owner invited, as typed.")
    invited_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="invitations"
    )
    role = models.CharField(max_length=16, choices=Membership.Role.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    expires_at = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["invited_user", "status"], name="invitation_invitee_idx")]

    def __str__(self) -> str:
        return f"{self.invitee} → {self.tenant_id} ({self.role}, {self.status})"


class AuditEvent(TenantOwnedModel):
    """Append-only record of every state change: a trigger refuses UPDATE and DELETE.

    ``tenant`` is empty for platform-wide events (a global kill); those are visible to every tenant.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor = models.CharField(max_length=150, help_text="Username, or the system component that acted.")
    action = models.CharField(max_length=100)
    resource_type = models.CharField(max_length=100)
    resource_id = models.CharField(max_length=100, blank=True)
    before_state = models.JSONField(null=True, blank=True)
    after_state = models.JSONField(null=True, blank=True)
    trace_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "resource_type", "resource_id"], name="audit_resource_idx"),
            models.Index(fields=["trace_id"], name="audit_trace_idx"),  # GET /api/audit-events?trace_id, the explorer
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.resource_type}:{self.resource_id} by {self.actor}"


class ProcessHeartbeat(models.Model):
    """Liveness of Celery workers, beat and the quote collector; system status reads it."""

    class Kind(models.TextChoices):
        WORKER = "worker", "Celery worker"
        BEAT = "beat", "Celery beat"
        QUOTE_COLLECTOR = "quote_collector", "Quote collector (manage.py collect_quotes)"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    hostname = models.CharField(max_length=255)
    pid = models.IntegerField()
    queues = models.JSONField(default=list, blank=True)
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "hostname"], name="heartbeat_unique_process")]

    def __str__(self) -> str:
        return f"{self.kind}@{self.hostname}"


class ApiToken(AbstractAuthToken):
    """An API token, stored only as its SHA-512 digest (django-rest-knox; ``KNOX_TOKEN_MODEL``). The value is shown
    once, when issued; ``token_key`` (its first 15 characters) only narrows the digest comparison and is never
    returned. Tokens belong to a user, not a tenant: a user's token works for each of their memberships."""

    id = models.BigAutoField(primary_key=True)
    digest = models.CharField(max_length=128, unique=True)
    name = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        ordering = ["id"]
        verbose_name = "API token"
        verbose_name_plural = "API tokens"

    def __str__(self) -> str:
        return f"token {self.id} of {self.user}"


class OutboxMessage(TenantOwnedModel):
    """A task to publish, written in the transaction of the row it dispatches (controlplane/outbox.py).

    Unsent while ``sent_at`` is null: the commit hook sends it at once, the relay (``controlplane.relay_outbox``)
    re-sends what that missed, with backoff, until the broker acknowledges. Tenant-owned under RLS like the rows
    it names; the relay visits one tenant at a time as the watchdog does."""

    task = models.CharField(max_length=200)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    queue = models.CharField(max_length=100, blank=True)
    options = models.JSONField(default=dict, blank=True)  # task_id and other apply_async options
    what = models.CharField(max_length=200, blank=True)
    trace_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["tenant", "id"], name="outbox_unsent", condition=models.Q(sent_at__isnull=True))
        ]

    def __str__(self) -> str:
        return f"outbox {self.id}: {self.task} ({'sent' if self.sent_at else 'unsent'})"


class StepUp(models.Model):
    """A second factor verified by a user, bound to the credential that presented it (controlplane/stepup.py): the
    console session (``session_key``) or the API token (``api_token``), never the user at large, so a code typed in
    one place does not unlock another token or browser. Kept per user, not per tenant: the factor is the user's."""

    class Method(models.TextChoices):
        TOTP = "totp", "Authenticator app"
        STATIC = "static", "Backup code"
        SMS = "sms", "SMS code"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    session_key = models.CharField(max_length=64, blank=True, default="", db_index=True)
    api_token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    method = models.CharField(max_length=16, choices=Method.choices)
    verified_at = models.DateTimeField()

    class Meta:
        ordering = ["-verified_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(session_key="") | models.Q(api_token__isnull=False), name="stepup_has_credential"
            )
        ]

    def __str__(self) -> str:
        return f"step-up of {self.user_id} by {self.method} at {self.verified_at:%Y-%m-%d %H:%M:%S}"


class UserPhone(models.Model):
    """The number a user's SMS codes go to. ``verified_at`` is set only by an SMS round trip to that number
    (controlplane/smscodes.py); an unverified number receives nothing but its own verification code."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="phone")
    number = models.CharField(max_length=20, help_text="E.164, e.g. +15551234567.")
    verified_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user_id}: ...{self.number[-4:]} ({'verified' if self.verified_at else 'unverified'})"


class SmsCode(models.Model):
    """One SMS code: only its HMAC is stored; it expires, allows a few guesses (counted in Redis, outside the
    request's transaction, controlplane/smscodes.py) and is consumed by its first match."""

    class Purpose(models.TextChoices):
        STEP_UP = "step_up", "Second factor"
        VERIFY_PHONE = "verify_phone", "Verify a phone number"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    number = models.CharField(max_length=20)
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    provider_message_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "purpose", "-created_at"], name="smscode_user_purpose_idx")]

    def __str__(self) -> str:
        return f"{self.purpose} code of {self.user_id} ({'used' if self.used_at else 'unused'})"


class Severity(models.TextChoices):
    """How loud an alert is; a recipient hears alerts at or above its ``min_severity``."""

    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


SEVERITY_RANK = {Severity.INFO: 1, Severity.WARNING: 2, Severity.CRITICAL: 3}


class AlertRecipient(TenantOwnedModel):
    """Someone an owner wants told: by SMS (an E.164 number) or e-mail, from ``min_severity`` up."""

    class Channel(models.TextChoices):
        SMS = "sms", "SMS"
        EMAIL = "email", "E-mail"

    name = models.CharField(max_length=100)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    address = models.CharField(max_length=254, help_text="E.164 phone number (+15551234567) or e-mail address.")
    min_severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.CRITICAL)
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "channel", "address"], name="alert_recipient_unique_address")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.channel} {self.address})"

    def hears(self, severity: str) -> bool:
        return self.active and SEVERITY_RANK[severity] >= SEVERITY_RANK[self.min_severity]


class Alert(TenantOwnedModel):
    """One alert raised, and how many repeats of it the dedup window swallowed.

    ``key`` names "the same alert" (event, tenant and bot unless the caller gives one); while a row of a key is
    younger than ``ALERT_DEDUP_WINDOW_SECONDS`` a repeat only counts here (``suppressed_count``) and reaches nobody.
    """

    event = models.CharField(max_length=100)
    key = models.CharField(max_length=200)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    message = models.TextField()
    fields = models.JSONField(default=dict, blank=True)
    bot_id = models.BigIntegerField(null=True, blank=True)  # a bot of the layer above: an id, not a foreign key
    trace_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(db_index=True)
    suppressed_count = models.PositiveIntegerField(default=0)
    last_suppressed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "key", "-created_at"], name="alert_key_recent_idx")]

    def __str__(self) -> str:
        return f"{self.severity} {self.event} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class AlertDelivery(TenantOwnedModel):
    """One alert on its way to one recipient: retried with backoff until SENT or, after
    ``ALERT_DELIVERY_MAX_ATTEMPTS``, FAILED (logged at ERROR and shown in the console). The channel and address
    are copied from the recipient when the alert is raised, so history says where it went even after an edit."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        SENT = "SENT", "Sent"
        FAILED = "FAILED", "Failed"

    TERMINAL = (Status.SENT, Status.FAILED)

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    recipient = models.ForeignKey(
        AlertRecipient, on_delete=models.SET_NULL, null=True, blank=True, related_name="deliveries"
    )
    channel = models.CharField(max_length=8, choices=AlertRecipient.Channel.choices)
    address = models.CharField(max_length=254)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    provider_message_id = models.CharField(max_length=100, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "alert deliveries"
        indexes = [
            models.Index(
                fields=["tenant", "next_attempt_at"], name="alert_delivery_due", condition=models.Q(status="PENDING")
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel} to {self.address}: {self.status}"
