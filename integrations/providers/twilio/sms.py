"""The ``sms.send`` hook: how the core (alerts, login codes) sends a text without importing integrations.

Each tenant's own Twilio keys and sending number are used (entered by the operator, or the deployment's
environment), through the provider's one client, so each send leaves a proof-of-use event and respects the
tenant's Twilio breaker.
"""

from __future__ import annotations

from controlplane import tenancy


def send_sms(*, tenant_id: int, to: str, body: str) -> str:
    """Send ``body`` to ``to`` (E.164) with ``tenant_id``'s Twilio account; the message sid.

    Raises ``IntegrationError`` (a ``ControlPlaneError``) when the keys are missing or Twilio refuses or fails."""
    from integrations.clients import client_for

    with tenancy.tenant_context(tenant_id):
        return client_for("twilio").send_sms(to=to, body=body)["sid"]
