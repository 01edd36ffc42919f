from django.urls import path

from bots import api

urlpatterns = [
    path("bots", api.BotListCreateView.as_view(), name="bots"),
    path("bots/starter-pack", api.StarterPackView.as_view(), name="bots-starter-pack"),
    path("bots/<int:pk>", api.BotDetailView.as_view(), name="bot-detail"),
    path("bots/<int:pk>/demote", api.BotDemoteView.as_view(), name="bot-demote"),
    path("bots/<int:pk>/kill", api.BotKillView.as_view(), name="bot-kill"),
    path("strategies", api.StrategyListView.as_view(), name="strategies"),
    path("tenant/kill", api.TenantKillView.as_view(), name="tenant-kill"),
    path("system/kill", api.SystemKillView.as_view(), name="system-kill"),
    path("runners", api.RunnerListView.as_view(), name="runners"),
    path("runners/start", api.RunnerStartView.as_view(), name="runner-start"),
    path("runners/<int:pk>/stop", api.RunnerStopView.as_view(), name="runner-stop"),
    path("runners/<int:pk>/restart", api.RunnerRestartView.as_view(), name="runner-restart"),
    path("jobs", api.JobListCreateView.as_view(), name="jobs"),
    path("jobs/<int:pk>", api.JobDetailView.as_view(), name="job-detail"),
    path("jobs/<int:pk>/cancel", api.JobCancelView.as_view(), name="job-cancel"),
    path("jobs/<int:pk>/retry", api.JobRetryView.as_view(), name="job-retry"),
]
