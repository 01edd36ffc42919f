"""Shared reads for tenancy: which tenants background work visits, and which tenants a user may act in."""

from __future__ import annotations

from django.db.models import QuerySet

from controlplane.models import Membership, Tenant

ADMIN_TENANT_SESSION_KEY = "admin_tenant_id"


def active_tenant_ids() -> list[int]:
    """The tenants that may start new work: ticks, market-data fetches, verifications, new backtests. A suspended
    tenant's bots send nothing new, so work that sends or starts things visits only these."""
    return list(Tenant.objects.filter(status=Tenant.Status.ACTIVE).order_by("id").values_list("id", flat=True))


def all_tenant_ids() -> list[int]:
    """Every tenant, suspended ones included: for work that makes things safe or keeps records true (cancels and
    kill sweeps, recovery of unacknowledged orders, reconcile, breakers, the watchdog, the outbox relay, key
    rotation, retention). Suspending a tenant must never leave its orders unwatched or its kills undone."""
    return list(Tenant.objects.order_by("id").values_list("id", flat=True))


def memberships_of(user) -> QuerySet[Membership]:
    """All of a user's memberships, across tenants (their RLS policy admits a user's own rows), the default first:
    the one they joined first is the tenant a request without ``X-Tenant`` acts in."""
    return Membership.unscoped.filter(user_id=user.id).select_related("tenant").order_by("created_at", "id")


def switchable_tenants_for(user) -> QuerySet[Tenant]:
    if user.is_superuser:
        return Tenant.objects.all()
    return Tenant.objects.filter(id__in=memberships_of(user).values("tenant_id"))


def admin_tenant_for(request) -> Tenant | None:
    """The tenant an admin page works in: the one chosen in the switcher, else the user's default (as in the API)."""
    from controlplane import tenancy

    tenancy.activate(tenant_id=None, user_id=request.user.id)
    tenants = switchable_tenants_for(request.user)
    chosen = request.session.get(ADMIN_TENANT_SESSION_KEY)
    if chosen is not None:
        tenant = tenants.filter(id=chosen).first()
        if tenant is not None:
            return tenant
    default = memberships_of(request.user).first()
    return default.tenant if default is not None else tenants.first()


def console_role(request) -> str | None:
    """The user's role in the tenant an admin page works in (superusers act as owners anywhere); None without a
    tenant or a membership. Read once per request."""
    tenant = getattr(request, "tenant", None)
    if tenant is None or not request.user.is_authenticated:
        return None
    if request.user.is_superuser:
        return Membership.Role.OWNER
    if not hasattr(request, "_console_role"):
        membership = Membership.objects.filter(user_id=request.user.id, tenant_id=tenant.id).first()
        request._console_role = membership.role if membership else None
    return request._console_role


def console_allows(request, role: str) -> bool:
    current = console_role(request)
    return current is not None and Membership.RANK[current] >= Membership.RANK[role]


# Whether an alert reached anyone, from its deliveries: "nobody" (none sent and none still trying: every delivery
# failed, or no recipient heard its severity), "pending" (none sent yet, some still trying), "partly" (some sent,
# some failed) and "reached" (sent, none failed). The console's column and filter and the API read this one rule.
ALERT_REACH = ("nobody", "pending", "partly", "reached")


def alerts_with_reach(queryset):
    """``queryset`` of alerts annotated with ``sent_count``, ``pending_count``, ``failed_count`` and ``reached``."""
    from django.db.models import Case, CharField, Count, Q, Value, When

    from controlplane.models import AlertDelivery

    status = AlertDelivery.Status
    return queryset.annotate(
        sent_count=Count("deliveries", filter=Q(deliveries__status=status.SENT)),
        pending_count=Count("deliveries", filter=Q(deliveries__status=status.PENDING)),
        failed_count=Count("deliveries", filter=Q(deliveries__status=status.FAILED)),
    ).annotate(
        reached=Case(
            When(sent_count__gt=0, failed_count__gt=0, then=Value("partly")),
            When(sent_count__gt=0, then=Value("reached")),
            When(pending_count__gt=0, then=Value("pending")),
            default=Value("nobody"),
            output_field=CharField(),
        )
    )
