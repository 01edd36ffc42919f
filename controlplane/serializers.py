from django.utils import timezone
from rest_framework import serializers

from controlplane.models import ApiToken, AuditEvent, Invitation, Membership


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "tenant", "username", "role", "created_at"]


class InvitationCreateSerializer(serializers.Serializer):
    """Who to invite: ``username`` or ``email``, exactly one."""

    username = serializers.CharField(max_length=150, required=False)
    email = serializers.EmailField(max_length=254, required=False)
    role = serializers.ChoiceField(choices=Membership.Role.choices)

    def validate(self, attrs):
        if ("username" in attrs) == ("email" in attrs):
            raise serializers.ValidationError({"username": ["Send a username or an email, exactly one."]})
        return {"invitee": attrs.get("username") or attrs["email"], "role": attrs["role"]}


class InvitationSerializer(serializers.ModelSerializer):
    """An invitation as its tenant's owners see it: what they typed, never whom (or whether anyone) it reached."""

    invited_by = serializers.CharField(source="created_by.username", read_only=True)
    expired = serializers.SerializerMethodField()

    class Meta:
        model = Invitation
        fields = ["id", "invitee", "role", "status", "expired", "expires_at", "invited_by", "created_at", "answered_at"]

    def get_expired(self, invitation) -> bool:
        return invitation.status == Invitation.Status.PENDING and invitation.expires_at <= timezone.now()


class MyInvitationSerializer(InvitationSerializer):
    """An invitation as the invited user sees it: which tenant asks, for which role, and who asked."""

    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta(InvitationSerializer.Meta):
        fields = ["id", "tenant", "role", "status", "expired", "expires_at", "invited_by", "created_at"]


class AuditEventSerializer(serializers.ModelSerializer):
    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id", "tenant", "actor", "action", "resource_type", "resource_id", "before_state", "after_state",
            "trace_id", "created_at",
        ]


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    tenant = serializers.CharField()
    role = serializers.CharField()
    is_superuser = serializers.BooleanField()
    memberships = MembershipSerializer(many=True)


class ApiTokenSerializer(serializers.ModelSerializer):
    """A token without its value (stored only as a digest; shown once, when issued)."""

    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "username", "name", "created", "expiry"]

