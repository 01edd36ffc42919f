from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from controlplane import api, api_alerts, enrolment, legacy, twofactor_api, views

handler400 = "controlplane.errors.handler400"
handler403 = "controlplane.errors.handler403"
handler404 = "controlplane.errors.handler404"
handler500 = "controlplane.errors.handler500"

api_patterns = [
    path("health", api.HealthView.as_view(), name="health"),
    path("me", api.MeView.as_view(), name="me"),
    path("tenant/members", api.MemberListView.as_view(), name="tenant-members"),
    path("tenant/members/<int:membership_id>", api.MemberDetailView.as_view(), name="tenant-member"),
    path("tenant/invitations", api.TenantInvitationListCreateView.as_view(), name="tenant-invitations"),
    path(
        "tenant/invitations/<int:invitation_id>/revoke",
        api.TenantInvitationRevokeView.as_view(),
        name="tenant-invitation-revoke",
    ),
    path("invitations", api.MyInvitationListView.as_view(), name="my-invitations"),
    path(
        "invitations/<int:invitation_id>/accept",
        api.MyInvitationAnswerView.as_view(answer="accept"),
        name="invitation-accept",
    ),
    path(
        "invitations/<int:invitation_id>/decline",
        api.MyInvitationAnswerView.as_view(answer="decline"),
        name="invitation-decline",
    ),
    path("tokens", api.MyTokenListView.as_view(), name="my-tokens"),
    path("tokens/<int:token_id>", api.MyTokenDetailView.as_view(), name="my-token"),
    path("tenant/tokens", api.TenantTokenListView.as_view(), name="tenant-tokens"),
    path("tenant/tokens/<int:token_id>", api.TenantTokenDetailView.as_view(), name="tenant-token"),
    path("audit-events", api.AuditEventListView.as_view(), name="audit-events"),
    path("tenant/alert-recipients", api_alerts.AlertRecipientListCreateView.as_view(), name="alert-recipients"),
    path("tenant/alert-recipients/<int:pk>", api_alerts.AlertRecipientDetailView.as_view(), name="alert-recipient"),
    path(
        "tenant/alert-recipients/<int:pk>/test",
        api_alerts.AlertRecipientTestView.as_view(),
        name="alert-recipient-test",
    ),
    path("alerts", api_alerts.AlertListView.as_view(), name="alerts"),
    path("auth/2fa/send", twofactor_api.SendCodeView.as_view(), name="two-factor-send"),
    path("auth/2fa/verify", twofactor_api.VerifyCodeView.as_view(), name="two-factor-verify"),
    path("auth/phone", twofactor_api.PhoneView.as_view(), name="phone"),
    path("auth/phone/verify", twofactor_api.PhoneVerifyView.as_view(), name="phone-verify"),
    path("tenant/security", twofactor_api.TenantSecurityView.as_view(), name="tenant-security"),
    path("", include("execution.urls")),
    path("integrations/", include("integrations.urls")),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("", include("bots.urls")),
    path("", include("backtests.urls")),
    path("", include("oversight.urls")),
]

urlpatterns = [
    path("admin/switch-tenant/", views.admin_switch_tenant, name="admin-switch-tenant"),
    path("admin/observatory/", include("observatory.urls")),
    path("admin/two-factor/", admin.site.admin_view(enrolment.two_factor_page), name="two-factor"),
    path("admin/", admin.site.urls),
    path("api/", include(api_patterns)),
    re_path(r"^api(/.*)?$", api.api_not_found),
    path("functions/v1/<str:function_name>", legacy.edge_call_blocked),
    path("functions/v1/<str:function_name>/<path:rest>", legacy.edge_call_blocked),
]
