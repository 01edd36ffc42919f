"""Links every console page shares, in a module with no admin imports so template tags can load it early."""

from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode


def trace_link(trace_id: str | None):
    """A trace id as a link to the trace explorer, which shows everything recorded under it. The explorer belongs
    to the observatory app above this one: it is reached by its URL name at call time, never imported."""
    if not trace_id:
        return "-"
    url = f"{reverse('observatory:trace')}?{urlencode({'trace_id': trace_id})}"
    return format_html('<a class="trace-link" href="{}">{}</a>', url, trace_id)


def admin_link(url_name: str, pk, label=None):
    """A link to another observatory page (bot, intent, order), or a dash when there is nothing to link. Pages of
    apps above the caller's are reached by URL name, never imported."""
    if pk is None:
        return "-"
    return format_html('<a href="{}">{}</a>', reverse(url_name, args=[pk]), label if label is not None else pk)
