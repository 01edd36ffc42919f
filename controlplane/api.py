"""Cross-cutting API views: health, who am I, members, the audit log, and the JSON 404 for unknown /api/ URLs."""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane import services
from controlplane.errors import ErrorCode, json_error_response
from controlplane.filters import FilterSet, IsoDateTimeFilter
from controlplane.models import AuditEvent, Membership
from controlplane.selectors import memberships_of
from controlplane.serializers import AuditEventSerializer, MembershipCreateSerializer, MembershipSerializer, MeSerializer
from controlplane.trace import current_trace_id


class HealthView(APIView):
    """The process answers and reaches its database (503 in the error shape when it does not, within the probe's
    bounds). Readiness of the whole system is GET /api/system/status."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []
    request_transaction = False  # it reports the database: it cannot wait for one (TenantTransactionMiddleware)

    @extend_schema(
        responses=inline_serializer(
            "Health",
            {"alive": serializers.BooleanField(), "version": serializers.CharField(),
             "trace_id": serializers.CharField()},
        )
    )
    def get(self, request):
        from controlplane.status import probe_database

        problem = probe_database()
        if problem is not None:
            return json_error_response(ErrorCode.SERVICE_UNAVAILABLE, message=problem["message"],
                                       suggested_fix=problem["suggested_fix"], details={"component": "database"})
        return Response({"alive": True, "version": settings.VERSION, "trace_id": current_trace_id()})


@csrf_exempt
def api_not_found(request, *args, **kwargs):
    return json_error_response(ErrorCode.NOT_FOUND, message=f"No API endpoint at {request.path}.")


class MeView(APIView):
    """Who the request acts as: user, tenant, role, and the other tenants the user could pick with X-Tenant."""

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        data = {
            "username": request.user.get_username(),
            "tenant": request.tenant.slug,
            "role": request.membership.role,
            "is_superuser": request.user.is_superuser,
            "memberships": memberships_of(request.user),
        }
        return Response(MeSerializer(data).data)


class MemberListCreateView(generics.ListAPIView):
    """Members of the current tenant; owners add members."""

    serializer_class = MembershipSerializer
    required_roles = {"POST": Membership.Role.OWNER}

    def get_queryset(self):
        return Membership.objects.select_related("user", "tenant").order_by("id")

    @extend_schema(request=MembershipCreateSerializer, responses={201: MembershipSerializer})
    def post(self, request):
        payload = MembershipCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        membership = services.membership_add(**payload.validated_data, actor=request.user)
        return Response(MembershipSerializer(membership).data, status=201)


class AuditEventFilter(FilterSet):
    created_after = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["action", "resource_type", "resource_id", "trace_id", "actor"]


class AuditEventListView(generics.ListAPIView):
    """The tenant's audit log (plus platform-wide events), newest first."""

    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter

    def get_queryset(self):
        return AuditEvent.unscoped.select_related("tenant")


class SystemStatusView(APIView):
    """BLOCKED, DEGRADED or OK for the request's tenant, with every blocker and its fix; never OK by default.

    With the database down nobody can be authenticated (tokens and memberships live there), so the answer is the
    platform's: BLOCKED with the database as its only blocker, to anyone who asks, like /api/health. Otherwise the
    request runs in one transaction as every other does (``request_transaction`` is off only so that the middleware
    does not answer 503 before this view has probed the database)."""

    request_transaction = False

    def dispatch(self, request, *args, **kwargs):
        from controlplane.status import database_down_status, probe_database

        problem = probe_database()
        if problem is not None:
            return JsonResponse(database_down_status(problem), encoder=DjangoJSONEncoder)
        with transaction.atomic():
            return super().dispatch(request, *args, **kwargs)

    def get(self, request):
        from controlplane.status import system_status

        return Response(system_status())
