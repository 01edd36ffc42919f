"""Who may do what in the console: the same roles as the API (viewers see, operators act, owners manage keys and
members), read from the membership in the tenant the page works in."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from controlplane.models import Membership
from controlplane.selectors import console_allows, console_role


def require_console_role(request, role: str) -> None:
    """Refuse a request (a forged POST included) whose user lacks ``role`` in the page's tenant."""
    if not console_allows(request, role):
        raise PermissionDenied(
            f"This needs the {role} role in this tenant; you are {console_role(request) or 'not a member'}."
        )


def can_operate(request) -> bool:
    return console_allows(request, Membership.Role.OPERATOR)


def can_manage_keys(request) -> bool:
    return console_allows(request, Membership.Role.OWNER)
