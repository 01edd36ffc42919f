"""Cross-cutting API views: health, who am I, members, the audit log, and the JSON 404 for unknown /api/ URLs."""

from django.conf import settings
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
from controlplane.openapi import STATUS_LEVELS
from controlplane.selectors import memberships_of
from controlplane.serializers import AuditEventSerializer, MembershipCreateSerializer, MembershipSerializer, MeSerializer
from controlplane.trace import current_trace_id


class HealthView(APIView):
    """Liveness only: the process answers. Readiness of the whole system is GET /api/system/status."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(
        responses=inline_serializer(
            "Health",
            {"alive": serializers.BooleanField(), "version": serializers.CharField(),
             "trace_id": serializers.CharField()},
        )
    )
    def get(self, request):
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


class StatusIssueSerializer(serializers.Serializer):
    code = serializers.CharField()
    component = serializers.CharField()
    message = serializers.CharField()
    suggested_fix = serializers.CharField()
    severity = serializers.ChoiceField(choices=["blocking", "degrading"])


class SystemStatusSerializer(serializers.Serializer):
    """``controlplane.status.system_status``; scheduler, integrations and bots are that module's (README)."""

    status = serializers.ChoiceField(choices=STATUS_LEVELS)
    autonomy_allowed = serializers.BooleanField()
    blockers = StatusIssueSerializer(many=True)
    bots = serializers.DictField()
    scheduler = serializers.DictField(allow_null=True)
    integrations = serializers.DictField()
    checked_at = serializers.DateTimeField()
    trace_id = serializers.CharField()


class SystemStatusView(APIView):
    """BLOCKED, DEGRADED or OK for the request's tenant, with every blocker and its fix; never OK by default."""

    @extend_schema(responses=SystemStatusSerializer)
    def get(self, request):
        from controlplane.status import system_status

        return Response(system_status())
