from django.urls import path

from oversight import api

urlpatterns = [
    path("bots/<int:pk>/promote", api.BotPromoteView.as_view(), name="bot-promote"),
    path("bots/<int:pk>/unkill", api.BotUnkillView.as_view(), name="bot-unkill"),
    path("tenant/unkill", api.TenantUnkillView.as_view(), name="tenant-unkill"),
    path("system/unkill", api.SystemUnkillView.as_view(), name="system-unkill"),
    path("bots/<int:pk>/reconcile", api.BotReconcileView.as_view(), name="bot-reconcile"),
    path("bots/<int:pk>/reconcile/resolve", api.BotReconcileResolveView.as_view(), name="bot-reconcile-resolve"),
    path("bots/<int:pk>/autonomy", api.BotAutonomyView.as_view(), name="bot-autonomy"),
    path("tenant/supervisor-thresholds", api.SupervisorThresholdsView.as_view(), name="supervisor-thresholds"),
    path("system/status", api.SystemStatusView.as_view(), name="system-status"),
]
