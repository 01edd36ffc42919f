"""Small template helpers for the console: trace links and timestamps that say how old they are."""

from __future__ import annotations

from decimal import Decimal

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

from controlplane.links import trace_link as admin_trace_link

register = template.Library()


@register.simple_tag
def trace_link(trace_id):
    """Every trace id in the console opens the trace explorer (the same link as the admin lists')."""
    return admin_trace_link(trace_id)


@register.filter
def when(value):
    """``2026-12-01 14:03:07 UTC (4 minutes ago)``, or ``never`` for a missing time."""
    if not value:
        return "never"
    now = timezone.now()
    age = f"{timesince(value, now).split(',')[0]} ago" if value <= now else "in the future"
    return f"{timezone.localtime(value):%Y-%m-%d %H:%M:%S} UTC ({age})"


@register.filter
def plain_decimal(value):
    """A stored decimal as a person writes it: ``50010`` for ``50010.0000000000``, never an exponent; ``—`` for
    none (a price nothing filled at)."""
    if value is None:
        return "—"
    value = Decimal(value)
    if value == value.to_integral_value():
        return f"{value.quantize(Decimal(1)):f}"
    return f"{value.normalize():f}"


@register.filter
def join_names(fields):
    return ", ".join(f["name"] for f in fields)
