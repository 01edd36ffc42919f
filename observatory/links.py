"""Links the observatory's panels show: an object's admin page and a trace's page."""

from __future__ import annotations

from django.urls import reverse
from django.utils.http import urlencode


def admin_url(model: str, pk) -> str | None:
    return reverse(f"admin:{model}_change", args=[pk]) if pk else None


def trace_url(trace_id: str | None) -> str | None:
    return f"{reverse('observatory:trace')}?{urlencode({'trace_id': trace_id})}" if trace_id else None
