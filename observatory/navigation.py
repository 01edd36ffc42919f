"""The console's sidebar: the operator's pages first, every model page below them (unfold SIDEBAR navigation)."""

from __future__ import annotations

from django.urls import reverse_lazy


def sidebar(request) -> list[dict]:
    return [
        {
            "title": "Observatory",
            "separator": True,
            "items": [
                {"title": "Dashboard", "icon": "monitoring", "link": reverse_lazy("admin:index")},
                {"title": "Connections", "icon": "cable", "link": reverse_lazy("observatory:connections")},
                {"title": "Keys Needed", "icon": "key", "link": reverse_lazy("admin:integrations_keys_needed")},
                {"title": "Trace explorer", "icon": "manage_search", "link": reverse_lazy("observatory:trace")},
                {
                    "title": "Alerts",
                    "icon": "notifications",
                    "link": reverse_lazy("admin:controlplane_alert_changelist"),
                },
                {"title": "Two-factor authentication", "icon": "lock", "link": reverse_lazy("two-factor")},
            ],
        }
    ]


def console_stylesheet(request) -> str:
    """The console's own few styles, loaded on every page after unfold's (UNFOLD STYLES)."""
    from django.templatetags.static import static

    return static("observatory/console.css")
