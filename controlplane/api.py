"""Cross-cutting API views: health, who am I, members, the audit log, and the JSON 404 for unknown /api/ URLs."""

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane import services
from controlplane.errors import ErrorCode, json_error_response
from controlplane.filters import FilterSet, IsoDateTimeFilter
from controlplane.models import ApiToken, AuditEvent, Invitation, Membership
from controlplane.permissions import AuthenticatedUser
from controlplane.selectors import memberships_of
from controlplane.serializers import (
    ApiTokenSerializer,
    AuditEventSerializer,
    InvitationCreateSerializer,
    InvitationSerializer,
    MembershipSerializer,
    MeSerializer,
    MyInvitationSerializer,
)
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
            {
                "alive": serializers.BooleanField(),
                "version": serializers.CharField(),
                "trace_id": serializers.CharField(),
            },
        )
    )
    def get(self, request):
        return Response({"alive": True, "version": settings.VERSION, "trace_id": current_trace_id()})

    def dispatch(self, request, *args, **kwargs):
        """The probe first; once the database answers, the request runs in a transaction of its own like any
        other (DRF marks the enclosing transaction for rollback on every error answer, a 405 included)."""
        from controlplane.status import probe_database

        problem = probe_database()
        if problem is not None:
            return json_error_response(
                ErrorCode.SERVICE_UNAVAILABLE,
                message=problem["message"],
                suggested_fix=problem["suggested_fix"],
                details={"component": "database"},
            )
        with transaction.atomic():
            return super().dispatch(request, *args, **kwargs)


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


class MemberListView(generics.ListAPIView):
    """Members of the current tenant. Nobody is added here: members join by accepting an invitation."""

    serializer_class = MembershipSerializer

    def get_queryset(self):
        return Membership.objects.select_related("user", "tenant").order_by("id")


class MemberDetailView(APIView):
    required_roles = {"DELETE": Membership.Role.OWNER}

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, membership_id: int):
        """An owner removes a member (audited); the last owner cannot be removed."""
        services.membership_remove(membership_id=membership_id, actor=request.user)
        return Response(status=204)


class TenantInvitationListCreateView(generics.ListAPIView):
    """The tenant's invitations, newest first; owners invite a username or an email.

    The answer is 202 with the same body whether or not the invitee names a user, so the endpoint tells nobody
    which usernames or emails exist.
    """

    serializer_class = InvitationSerializer
    required_role = Membership.Role.OWNER
    filterset_fields = ["status"]

    def get_queryset(self):
        return Invitation.objects.select_related("created_by")

    @extend_schema(request=InvitationCreateSerializer, responses={202: InvitationSerializer})
    def post(self, request):
        payload = InvitationCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        invitation = services.invitation_create(**payload.validated_data, actor=request.user)
        return Response(InvitationSerializer(invitation).data, status=202)


class TenantInvitationRevokeView(APIView):
    required_role = Membership.Role.OWNER

    @extend_schema(request=None, responses=InvitationSerializer)
    def post(self, request, invitation_id: int):
        """An owner withdraws a pending invitation."""
        invitation = services.invitation_revoke(invitation_id=invitation_id, actor=request.user)
        return Response(InvitationSerializer(invitation).data)


class MyInvitationListView(generics.ListAPIView):
    """The pending, unexpired invitations addressed to the user, in every tenant (no X-Tenant needed)."""

    serializer_class = MyInvitationSerializer
    permission_classes = [AuthenticatedUser]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Invitation.unscoped.none()
        return Invitation.unscoped.filter(
            invited_user=self.request.user, status=Invitation.Status.PENDING, expires_at__gt=timezone.now()
        ).select_related("tenant", "created_by")


class MyInvitationAnswerView(APIView):
    """The invited user accepts (and becomes a member with the invited role) or declines."""

    permission_classes = [AuthenticatedUser]
    answer: str = ""  # "accept" or "decline", set in urls.py
    services_by_answer = {"accept": services.invitation_accept, "decline": services.invitation_decline}

    @extend_schema(request=None, responses=MyInvitationSerializer)
    def post(self, request, invitation_id: int):
        self.services_by_answer[self.answer](invitation_id=invitation_id, user=request.user)
        invitation = Invitation.unscoped.select_related("tenant", "created_by").get(id=invitation_id)
        return Response(MyInvitationSerializer(invitation).data)


class MyTokenListView(generics.ListAPIView):
    """The user's own API tokens, without their values (no X-Tenant needed)."""

    serializer_class = ApiTokenSerializer
    permission_classes = [AuthenticatedUser]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return ApiToken.objects.filter(user=self.request.user).select_related("user")


class MyTokenDetailView(APIView):
    permission_classes = [AuthenticatedUser]

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, token_id: int):
        """The user revokes one of their tokens (audited); it stops working at once, the others keep working."""
        services.token_revoke(token_id=token_id, actor=request.user)
        return Response(status=204)


class TenantTokenListView(generics.ListAPIView):
    """An owner sees the tokens of the tenant's members who belong to no other tenant (a token works in every
    tenant of its user, so only a tenant that has the user alone may end it)."""

    serializer_class = ApiTokenSerializer
    required_role = Membership.Role.OWNER

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return services.tokens_revocable_by_tenant_owner(self.request.tenant.id)


class TenantTokenDetailView(APIView):
    required_role = Membership.Role.OWNER

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, token_id: int):
        """An owner revokes a member's token (one listed by GET /api/tenant/tokens; audited)."""
        services.token_revoke(token_id=token_id, actor=request.user, as_tenant_owner=True)
        return Response(status=204)


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
