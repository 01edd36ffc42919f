"""The rows ``controlplane.db.rows`` writes for the OMS and the submitters: each column's value in the insert's JSON
document is what Django's own preparation of the field gives (``pre_save``, then ``get_prep_value`` or the JSON
field's encoder), whichever shortcut the writer takes for the plain types."""

import datetime
import json
from decimal import Decimal

import pytest
from django.db.models import JSONField

from controlplane import tenancy
from controlplane.db.rows import insert_rows_sql, update_rows_sql
from controlplane.models import AuditEvent
from execution.models import IntentLeg, Order, TradeIntent
from execution.orders.intent_batches import IntentRequest, submit_intents
from execution.orders.sending import order_for
from tests.execution.conftest import T0, buy, sell

pytestmark = pytest.mark.django_db


def _django_value(field, obj, *, insert=True):
    """What the writer wrote before its shortcuts: for an insert ``pre_save`` (an ``auto_now`` field's value as the
    writer's own call set it on the object), for an update the attribute, then the field's preparation, as JSON
    text reads it back."""
    auto = getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
    value = field.pre_save(obj, add=True) if insert and not auto else getattr(obj, field.attname)
    if isinstance(field, JSONField):
        return value if field.encoder is None else json.loads(json.dumps(value, cls=field.encoder))
    value = field.get_prep_value(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    return value


def _assert_document_is_django_s(objs):
    sql, params = insert_rows_sql(objs)
    with_pk = objs[0].pk is not None
    columns = [f for f in type(objs[0])._meta.concrete_fields if with_pk or not f.primary_key]
    expected = [{f"k{i}": _django_value(field, obj) for i, field in enumerate(columns)} for obj in objs]
    assert json.loads(params[0]) == json.loads(json.dumps(expected))
    assert params[0] == json.dumps(expected)  # the same text too: the same types, the same key order


def _assert_update_document_is_django_s(objs, fields):
    sql, params = update_rows_sql(objs, fields)
    columns = [type(objs[0])._meta.get_field(name) for name in fields]
    expected = {
        str(obj.pk): {f"k{i}": _django_value(field, obj, insert=False) for i, field in enumerate(columns)}
        for obj in objs
    }
    assert params[0] == json.dumps(expected)


def test_insert_documents_hold_what_django_prepares_for_every_column(tenant_a, owner_a, es_bars, trading_bot):
    bot = trading_bot()
    with tenancy.tenant_context(tenant_a.id):
        submit_intents(
            [
                IntentRequest(
                    bot=bot, legs=[buy("0.000000001"), sell("12345.5")], idempotency_key=f"doc-{n}", bar_ts=T0
                )
                for n in range(3)
            ],
            source="tick",
        )
        intents = list(TradeIntent.objects.select_related("bot").order_by("id"))
        legs = list(IntentLeg.objects.select_related("intent__bot").order_by("id"))
        _assert_document_is_django_s(intents)  # primary keys set (the submitters' allocated ids)
        _assert_document_is_django_s(legs)

        intents[0].status_detail, intents[1].risk_checks = None, {"price": "1.5", "checks": [1, None, True]}
        intents[2].quantity = 3  # an int in a decimal column: through the field, as before
        for intent in intents:
            intent.pk = None
        _assert_document_is_django_s(intents)
        assert intents[0].created_at is not None  # auto_now_add set on the object, as bulk_create sets it

        prices = [Decimal("50010.123456789"), None, Decimal("0.000000001")]
        orders = [order_for(leg.intent, leg, prices[n % 3]) for n, leg in enumerate(legs)]
        orders[1].quantity, orders[2].bot_stage = 2, Order.Status.SUBMITTING  # an int; a choices member
        orders[3].not_before = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC)
        _assert_document_is_django_s(orders)

        audit = [
            AuditEvent(
                tenant_id=tenant_a.id,
                actor_user=owner_a,
                actor="owner",
                action="intent.create",
                resource_type="intent",
                resource_id=str(intent.pk),
                before_state=None if n else {"quantity": "1.25", "n": 2.5},
                after_state={"at": T0.isoformat(), "legs": [{"quantity": "1"}]},
                trace_id="",
            )
            for n, intent in enumerate(legs)
        ]
        _assert_document_is_django_s(audit)

        stored = list(TradeIntent.objects.order_by("id"))
        stored[0].status, stored[1].risk_checks, stored[2].status_detail = TradeIntent.Status.ACCEPTED, [{"a": 1}], None
        stored[0].updated_at = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC)
        _assert_update_document_is_django_s(stored, ["risk_checks", "status_detail", "status", "updated_at"])
        legs[0].quantity, legs[1].limit_price = 7, Decimal("0.000000001")
        _assert_update_document_is_django_s(legs, ["quantity", "limit_price", "side"])
