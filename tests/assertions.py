"""Assertions shared by test modules. They live here, not in a test module: importing one test module from another
makes pytest's collection depend on the order the files are given in (the imported module's fixtures go missing)."""

from __future__ import annotations

from controlplane import tenancy
from controlplane.models import AuditEvent

ERROR_SHAPE = {"error_code", "message", "suggested_fix", "trace_id"}


def assert_error(response, status, code):
    """The answer is ``status`` with ``code`` in the one error shape, its trace id the response's."""
    assert response.status_code == status, response.content
    body = response.json()
    assert ERROR_SHAPE <= set(body), body
    assert body["error_code"] == code
    assert body["trace_id"] == response["X-Trace-Id"]
    assert body["message"] and body["suggested_fix"]
    return body


def audit_actions(tenant, resource_type, resource_id):
    """The audit actions recorded on one resource of ``tenant``, oldest first."""
    with tenancy.tenant_context(tenant.id):
        return list(
            AuditEvent.objects.filter(resource_type=resource_type, resource_id=str(resource_id))
            .order_by("id")
            .values_list("action", flat=True)
        )
