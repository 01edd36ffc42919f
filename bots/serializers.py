from rest_framework import serializers

from bots.models import (
    IMPORTED_DATA_SOURCE,
    SIM_VENUE,
    Bot,
    GlobalKillSwitch,
    Job,
    Reconciliation,
    Runner,
    Stage,
    TenantKillSwitch,
)
from bots.timeframes import Timeframe
from integrations.registry import Category, providers_in
from bots.services import PositionsDecision
from controlplane.serializers import WriteSerializer


class BotSerializer(serializers.ModelSerializer):
    class Meta:
        model = Bot
        fields = [
            "id",
            "name",
            "strategy",
            "parameters",
            "parameters_hash",
            "instruments",
            "timeframe",
            "venue",
            "data_source",
            "stage",
            "autonomy_tier",
            "risk_limits",
            "killed",
            "killed_at",
            "killed_by",
            "kill_reason",
            "reconcile_mismatch",
            "live_approved_at",
            "starter_key",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class BotWriteSerializer(WriteSerializer):
    """Field validation only; the strategy parameters are validated against the registry in the service."""

    name = serializers.CharField(max_length=200)
    strategy = serializers.CharField(max_length=64)
    parameters = serializers.DictField(required=False, default=dict)
    instruments = serializers.ListField(child=serializers.CharField(max_length=64), min_length=1)
    timeframe = serializers.ChoiceField(choices=Timeframe.choices, required=False, default=Timeframe.M1)
    venue = serializers.SlugField(max_length=64, required=False, default="sim")
    data_source = serializers.SlugField(max_length=64, required=False, default="imported")
    risk_limits = serializers.DictField(required=False, default=dict)

    def validate_venue(self, value: str) -> str:
        venues = {SIM_VENUE} | {p.provider for p in providers_in(Category.BROKER) + providers_in(Category.CRYPTO_VENUE)}
        if value not in venues:
            raise serializers.ValidationError(f"Unknown venue {value!r}; one of: {', '.join(sorted(venues))}.")
        return value

    def validate_data_source(self, value: str) -> str:
        sources = {IMPORTED_DATA_SOURCE} | {p.provider for p in providers_in(Category.MARKET_DATA)}
        if value not in sources:
            raise serializers.ValidationError(f"Unknown data source {value!r}; one of: {', '.join(sorted(sources))}.")
        return value


class StageChangeSerializer(WriteSerializer):
    to = serializers.ChoiceField(choices=Stage.choices, required=False)
    reason = serializers.CharField(required=False, default="", allow_blank=True)


class KillSerializer(WriteSerializer):
    reason = serializers.CharField()


class UnkillSerializer(WriteSerializer):
    reason = serializers.CharField()
    positions_decision = serializers.ChoiceField(choices=PositionsDecision.CHOICES, required=False)


class TenantKillSwitchSerializer(serializers.ModelSerializer):
    class Meta:
        model = TenantKillSwitch
        fields = ["killed", "changed_at", "changed_by", "reason"]


class GlobalKillSwitchSerializer(serializers.ModelSerializer):
    class Meta:
        model = GlobalKillSwitch
        fields = ["killed", "changed_at", "changed_by", "reason"]


class ReconciliationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Reconciliation
        fields = [
            "id",
            "bot",
            "status",
            "purpose",
            "venue",
            "book",
            "internal_positions",
            "venue_positions",
            "differences",
            "is_flat",
            "requested_by",
            "trace_id",
            "created_at",
            "resolution",
            "resolution_reason",
            "resolved_by",
            "resolved_at",
            "resolution_detail",
        ]


class ReconcileResolveSerializer(WriteSerializer):
    action = serializers.ChoiceField(choices=Reconciliation.Resolution.choices)
    reason = serializers.CharField(max_length=2000)


class ReconcileResolutionSerializer(serializers.Serializer):
    resolved = ReconciliationSerializer(help_text="The MISMATCH report, now carrying the resolution.")
    followup = ReconciliationSerializer(help_text="The reconcile run right after; only a match clears the flag.")


class RunnerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Runner
        fields = [
            "id",
            "bot",
            "status",
            "mode",
            "started_by",
            "started_at",
            "last_heartbeat_at",
            "last_tick_at",
            "stopped_at",
            "stop_reason",
            "restart_count",
            "consecutive_errors",
            "replay_start",
            "replay_end",
            "replay_cursor",
            "trace_id",
        ]


class RunnerStartSerializer(WriteSerializer):
    bot_id = serializers.IntegerField()
    mode = serializers.ChoiceField(choices=Runner.Mode.choices, required=False, default=Runner.Mode.LIVE)
    replay_start = serializers.DateTimeField(required=False, default=None)
    replay_end = serializers.DateTimeField(required=False, default=None)


class RunnerStopSerializer(WriteSerializer):
    reason = serializers.CharField(required=False, default="", allow_blank=True)


class JobSerializer(serializers.ModelSerializer):
    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "status",
            "bot",
            "params",
            "attempts",
            "max_attempts",
            "lease_expires_at",
            "celery_task_id",
            "error_code",
            "error_message",
            "result",
            "trace_id",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]


class JobCreateSerializer(WriteSerializer):
    kind = serializers.ChoiceField(choices=Job.Kind.choices)
    bot_id = serializers.IntegerField(required=False)
    params = serializers.DictField(required=False, default=dict)


class StarterPackSerializer(serializers.Serializer):
    created = BotSerializer(many=True)
    existing = BotSerializer(many=True)
