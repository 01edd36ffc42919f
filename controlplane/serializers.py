"""The project's serializers of core rows, and the base every request-body serializer of every app uses.

A field a serializer does not know used to be dropped without a word: a matrix posted with ``parameters`` (the
field is ``base_parameters``) ran on the defaults. :class:`RefuseUnknownFields` refuses it instead, naming it in
a ``VALIDATION_ERROR`` (with the other field errors of the body, if any). Request bodies subclass
:class:`WriteSerializer` (or mix :class:`RefuseUnknownFields` into a ModelSerializer); query-string serializers
do not (a page's ``limit`` and a filter share one query string). tests/controlplane/test_unknown_fields.py posts
an unknown field to every operation with a body in the OpenAPI schema, so a serializer that forgets the base fails.
"""

from collections.abc import Mapping

from django.utils import timezone
from rest_framework import serializers

from controlplane.models import ApiToken, AuditEvent, Invitation, Membership

UNKNOWN_FIELD = "unknown_field"


class RefuseUnknownFields:
    """A serializer that answers VALIDATION_ERROR for a key of its body it has no field for (nested ones too)."""

    def _unknown_fields(self, data) -> list[str]:
        if not isinstance(data, Mapping):
            return []  # DRF's own "expected a dictionary" error covers it
        # A form's keys may be paths into nested fields ("params.x", "legs[0]symbol"): the first segment counts.
        keys = {str(key).split(".", 1)[0].split("[", 1)[0] for key in data}
        return sorted(keys - set(self.fields))

    def to_internal_value(self, data):
        unknown = self._unknown_fields(data)
        accepted = ", ".join(sorted(name for name, field in self.fields.items() if not field.read_only))
        errors = {
            name: [serializers.ErrorDetail(f"Unknown field; this endpoint accepts: {accepted}.", code=UNKNOWN_FIELD)]
            for name in unknown
        }
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if errors and isinstance(exc.detail, dict):
                exc.detail.update(errors)
            raise
        if errors:
            raise serializers.ValidationError(errors)
        return value


class WriteSerializer(RefuseUnknownFields, serializers.Serializer):
    """The base of every request body."""


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "tenant", "username", "role", "created_at"]


class InvitationCreateSerializer(WriteSerializer):
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
            "id",
            "tenant",
            "actor",
            "action",
            "resource_type",
            "resource_id",
            "before_state",
            "after_state",
            "trace_id",
            "created_at",
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
