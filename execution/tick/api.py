"""The tick's record over the API: a bot's traces and why it did or did not trade (why-not, over a window), thin
views over the traces selectors."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from bots.models import Bot
from bots.selectors import active_runner
from traces.models import ReasonCode, TickTrace
from traces.selectors import WINDOW_DECISIONS_LIMIT, bot_traces, why_not, why_not_window


class BotTraceSerializer(serializers.ModelSerializer):
    class Meta:
        model = TickTrace
        fields = [
            "id",
            "kind",
            "context",
            "run_ref",
            "instrument",
            "timeframe",
            "bar_ts",
            "reason_code",
            "details",
            "inputs",
            "signal",
            "risk_checks",
            "intent_id",
            "trace_id",
            "created_at",
        ]


class BotTraceQuerySerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=TickTrace.Kind.choices, required=False)
    context = serializers.ChoiceField(choices=TickTrace.Context.choices, required=False)
    since = serializers.DateTimeField(required=False, help_text="Bars at or after this time (ISO-8601).")
    until = serializers.DateTimeField(required=False, help_text="Bars before this time (exclusive).")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=1000, default=100)

    def validate(self, attrs):
        if attrs.get("since") and attrs.get("until") and attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": ["Must be later than since."]})
        return attrs


class BotTracesSerializer(serializers.Serializer):
    bot_id = serializers.IntegerField()
    results = BotTraceSerializer(many=True)


class WhyNotQuerySerializer(serializers.Serializer):
    """The window of ``?from=&to=``: ``to`` defaults to now when ``from`` is given; neither gives today's verdict
    alone. ``from`` is a keyword in Python, hence the field built by name."""

    to = serializers.DateTimeField(required=False, help_text="Window end, exclusive (ISO-8601); default now.")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField(
            required=False, help_text="Window start, inclusive (ISO-8601). Required with to."
        )
        return fields

    def validate(self, attrs):
        start, end = attrs.get("from"), attrs.get("to")
        if end is not None and start is None:
            raise serializers.ValidationError({"from": ["Required when to is given."]})
        if start is None:
            return attrs
        end = end or timezone.now()
        if start >= end:
            raise serializers.ValidationError({"to": ["Must be later than from."]})
        if end - start > timedelta(days=settings.TRACE_WINDOW_MAX_DAYS):
            raise serializers.ValidationError(
                {"to": [f"The window may span at most {settings.TRACE_WINDOW_MAX_DAYS} days (TRACE_WINDOW_MAX_DAYS)."]}
            )
        return {"from": start, "to": end}


class WindowRunSerializer(serializers.Serializer):
    length = serializers.IntegerField(help_text="Consecutive traces of this reason on one instrument.")
    start = serializers.DateTimeField(help_text="Bar of the run's first trace.")
    end = serializers.DateTimeField(help_text="Bar of the run's last trace.")
    instrument = serializers.CharField()


class WindowReasonSerializer(serializers.Serializer):
    reason_code = serializers.ChoiceField(choices=ReasonCode.choices)
    count = serializers.IntegerField()
    first = serializers.DateTimeField()
    last = serializers.DateTimeField()
    longest_run = WindowRunSerializer()


class WindowDecisionSerializer(serializers.Serializer):
    """A decision of the window; its trace is GET /api/bots/{id}/traces?since=<bar_ts>&until=<next bar>."""

    bar_ts = serializers.DateTimeField()
    instrument = serializers.CharField()
    intent_id = serializers.IntegerField(allow_null=True)


class WindowDecisionsSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    results = WindowDecisionSerializer(many=True, help_text=f"The first {WINDOW_DECISIONS_LIMIT}, oldest first.")
    limit = serializers.IntegerField()
    truncated = serializers.BooleanField()


class WhyNotWindowSerializer(serializers.Serializer):
    """``traces.selectors.why_not_window``: live/paper ticks only."""

    to = serializers.DateTimeField()
    traces = serializers.IntegerField(help_text="Tick traces in the window; 0 means the bot did not tick.")
    no_trade = serializers.IntegerField()
    reasons = WindowReasonSerializer(many=True)
    decisions = WindowDecisionsSerializer()
    retained_from = serializers.DateTimeField(help_text="Traces of earlier bars are dropped (TRACE_RETENTION_DAYS).")
    complete = serializers.BooleanField(help_text="False when the window starts before retained_from.")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField()
        return fields


class WhyNotRunnerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()


class WhyNotSerializer(serializers.Serializer):
    """``traces.selectors.why_not`` with the bot's runner; the verdict's fields are null until the bot ticked."""

    bot_id = serializers.IntegerField()
    runner = WhyNotRunnerSerializer(allow_null=True)
    ticked = serializers.BooleanField()
    trading = serializers.BooleanField(allow_null=True)
    reason_code = serializers.CharField(allow_null=True)
    what_would_change_it = serializers.CharField(allow_null=True)
    since = serializers.DateTimeField(required=False, allow_null=True)
    latest_trace_id = serializers.IntegerField(required=False, help_text="The latest tick trace's id.")
    latest_bar_ts = serializers.DateTimeField(required=False, allow_null=True)
    details = serializers.JSONField(required=False)
    trace_id = serializers.CharField(required=False)
    window = WhyNotWindowSerializer(required=False, help_text="Only with ?from= (and ?to=).")


def _bot_or_404(pk: int) -> Bot:
    return generics.get_object_or_404(Bot.objects.all(), pk=pk)


class BotTracesView(APIView):
    """Why the bot traded, or why it did not: its decision and no-trade traces, newest first."""

    @extend_schema(parameters=[BotTraceQuerySerializer], responses=BotTracesSerializer)
    def get(self, request, pk: int):
        bot = _bot_or_404(pk)
        query = BotTraceQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        traces = bot_traces(
            bot_id=bot.id,
            kind=params.get("kind"),
            since=params.get("since"),
            until=params.get("until"),
            context=params.get("context"),
        )[: params["limit"]]
        return Response({"bot_id": bot.id, "results": BotTraceSerializer(traces, many=True).data})


class WhyNotView(APIView):
    """The latest tick's verdict: the no-trade reason, since when it has held, and what would change it; with
    ``?from=&to=``, also the window's counts, first and last bar and longest run per reason, and its decisions."""

    @extend_schema(parameters=[WhyNotQuerySerializer], responses=WhyNotSerializer)
    def get(self, request, pk: int):
        bot = _bot_or_404(pk)
        query = WhyNotQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        window = query.validated_data
        answer = why_not(bot_id=bot.id)
        runner = active_runner(bot.id)
        body = {"bot_id": bot.id, "runner": {"id": runner.id, "status": runner.status} if runner else None}
        if answer is None:
            body |= {
                "ticked": False,
                "trading": None,
                "reason_code": None,
                "what_would_change_it": "The bot has never ticked: start a runner (POST /api/runners/start).",
            }
        else:
            body |= {"ticked": True, **answer}
        if window.get("from"):
            body["window"] = WhyNotWindowSerializer(
                why_not_window(bot_id=bot.id, start=window["from"], end=window["to"])
            ).data
        return Response(body)
