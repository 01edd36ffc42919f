from django.urls import path

from integrations import api

urlpatterns = [
    path("status", api.IntegrationStatusView.as_view(), name="integrations-status"),
    path("verify", api.VerifyView.as_view(), name="integrations-verify"),
    path("usage", api.UsageView.as_view(), name="integrations-usage"),
    path("keys-needed", api.KeysNeededView.as_view(), name="integrations-keys-needed"),
    path("credentials", api.CredentialsView.as_view(), name="integrations-credentials"),
    path("confirm-permissions", api.ConfirmPermissionsView.as_view(), name="integrations-confirm-permissions"),
    path(
        "credentials/<str:provider>/<str:name>",
        api.CredentialDetailView.as_view(),
        name="integrations-credential-detail",
    ),
]
