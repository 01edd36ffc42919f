"""Alerts over the API: owners manage who is told (recipients, each write one audited service call) and send a
test; every member reads the alert history with each delivery's fate."""

from __future__ import annotations

import django_filters
from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane import alerting
from controlplane.filters import FilterSet
from controlplane.stepup import require_step_up
from controlplane.models import Alert, AlertDelivery, AlertRecipient, Membership, Severity
from controlplane.selectors import ALERT_REACH, alerts_with_reach
from controlplane.serializers import WriteSerializer


class AlertRecipientSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True, default=None)

    class Meta:
        model = AlertRecipient
        fields = [
            "id",
            "name",
            "channel",
            "address",
            "min_severity",
            "active",
            "created_by",
            "created_at",
            "updated_at",
        ]


class AlertRecipientWriteSerializer(WriteSerializer):
    """The address is checked for its channel by the service (E.164 for SMS, an e-mail address for e-mail)."""

    name = serializers.CharField(max_length=100)
    channel = serializers.ChoiceField(choices=AlertRecipient.Channel.choices)
    address = serializers.CharField(max_length=254)
    min_severity = serializers.ChoiceField(choices=Severity.choices, default=Severity.CRITICAL)
    active = serializers.BooleanField(default=True)


class AlertDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = AlertDelivery
        fields = [
            "id",
            "alert",
            "recipient",
            "channel",
            "address",
            "status",
            "attempts",
            "next_attempt_at",
            "last_error",
            "provider_message_id",
            "sent_at",
            "created_at",
        ]


class AlertSerializer(serializers.ModelSerializer):
    deliveries = AlertDeliverySerializer(many=True, read_only=True)
    reached = serializers.ChoiceField(
        choices=ALERT_REACH,
        read_only=True,
        help_text="nobody (every delivery failed, or no recipient heard it), pending, partly (some failed) or reached.",
    )

    class Meta:
        model = Alert
        fields = [
            "id",
            "event",
            "key",
            "severity",
            "message",
            "fields",
            "bot_id",
            "trace_id",
            "created_at",
            "suppressed_count",
            "last_suppressed_at",
            "reached",
            "deliveries",
        ]


class AlertRecipientListCreateView(generics.ListAPIView):
    """The tenant's alert recipients (owners only: they are people's phone numbers and addresses)."""

    serializer_class = AlertRecipientSerializer
    required_role = Membership.Role.OWNER

    def get_queryset(self):
        return AlertRecipient.objects.select_related("created_by").order_by("id")

    @extend_schema(request=AlertRecipientWriteSerializer, responses={201: AlertRecipientSerializer})
    def post(self, request):
        payload = AlertRecipientWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        require_step_up(request, action="Adding an alert recipient")
        recipient = alerting.recipient_create(**payload.validated_data, actor=request.user)
        return Response(AlertRecipientSerializer(recipient).data, status=201)


class AlertRecipientDetailView(generics.RetrieveAPIView):
    serializer_class = AlertRecipientSerializer
    required_role = Membership.Role.OWNER

    def get_queryset(self):
        return AlertRecipient.objects.select_related("created_by")

    @extend_schema(request=AlertRecipientWriteSerializer, responses=AlertRecipientSerializer)
    def patch(self, request, pk: int):
        payload = AlertRecipientWriteSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        # Only what was sent changes (a partial serializer still fills in its defaults).
        changes = {name: payload.validated_data[name] for name in request.data if name in payload.validated_data}
        recipient_id = self.get_object().id
        require_step_up(request, action=f"Changing alert recipient {recipient_id}")
        recipient = alerting.recipient_update(recipient_id=recipient_id, changes=changes, actor=request.user)
        return Response(AlertRecipientSerializer(recipient).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, pk: int):
        """Remove a recipient; deliveries still pending to them are not sent (FAILED, saying why)."""
        recipient_id = self.get_object().id
        require_step_up(request, action=f"Removing alert recipient {recipient_id}")
        alerting.recipient_delete(recipient_id=recipient_id, actor=request.user)
        return Response(status=204)


class AlertRecipientTestView(APIView):
    required_role = Membership.Role.OWNER

    @extend_schema(request=None, responses={201: AlertDeliverySerializer})
    def post(self, request, pk: int):
        """Send a test alert to this recipient now; the delivery after its first attempt (SENT, or PENDING with
        the error and the time of its retry)."""
        recipient = generics.get_object_or_404(AlertRecipient.objects.all(), pk=pk)
        delivery = alerting.recipient_test(recipient_id=recipient.id, actor=request.user)
        return Response(AlertDeliverySerializer(delivery).data, status=201)


class AlertFilter(FilterSet):
    reached = django_filters.ChoiceFilter(choices=[(value, value) for value in ALERT_REACH])

    class Meta:
        model = Alert
        fields = ["event", "severity", "bot_id", "trace_id"]


class AlertListView(generics.ListAPIView):
    """The tenant's alerts, newest first, each with its deliveries (where it went, and whether it arrived);
    ``reached=nobody`` lists the ones nobody received."""

    serializer_class = AlertSerializer
    filterset_class = AlertFilter

    def get_queryset(self):
        deliveries = Prefetch("deliveries", queryset=AlertDelivery.objects.order_by("id"))
        # Explicit: a model's Meta.ordering does not apply to a query that aggregates.
        return alerts_with_reach(Alert.objects.all()).prefetch_related(deliveries).order_by("-created_at", "-id")
