from django.contrib import admin
from django.urls import path

from observatory import views
from observatory.bot_actions import bot_action

app_name = "observatory"

urlpatterns = [
    path("dashboard/panel/", admin.site.admin_view(views.dashboard_panel), name="dashboard-panel"),
    path("connections/", admin.site.admin_view(views.connections), name="connections"),
    path("connections/<str:provider>/verify/", admin.site.admin_view(views.connection_verify), name="verify"),
    path("connections/<str:provider>/keys/", admin.site.admin_view(views.connection_keys), name="keys"),
    path("connections/<str:provider>/usage/", admin.site.admin_view(views.connection_usage), name="usage"),
    path("bots/<int:bot_id>/<str:action>/", admin.site.admin_view(bot_action), name="bot-action"),
    path("trace/", admin.site.admin_view(views.trace_explorer), name="trace"),
]
