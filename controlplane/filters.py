"""The one base of every API filterset, and the datetime filter that refuses what Postgres cannot take.

django-filter hands a parsed datetime to the database with the offset it was written with; Postgres holds offsets
up to 15:59 only, so ``created_after=2026-12-01T00:00:00+16:00`` was a 500 ("time zone displacement out of
range"), and an instant that leaves Python's years 1 to 9999 once in UTC (``9999-12-31T23:00:00-05:00``) was
another. :class:`BoundedIsoDateTimeField` refuses both as a field error (400 ``VALIDATION_ERROR`` naming the
filter) and hands the database UTC. Every filterset derives from :class:`FilterSet` (one built from a view's
``filterset_fields`` too, through :class:`FilterBackend`), whose defaults give a model's datetime field this
filter; ``tests/controlplane/test_bad_input.py`` checks that no filterset escapes it.
"""

from __future__ import annotations

from datetime import UTC, timedelta

import django_filters
from django.core.exceptions import ValidationError
from django.db import models
from django_filters.fields import IsoDateTimeField
from django_filters.rest_framework import DjangoFilterBackend

MAX_UTC_OFFSET = timedelta(hours=15, minutes=59)  # Postgres's bound on a timestamptz's written offset


class BoundedIsoDateTimeField(IsoDateTimeField):
    """An ISO-8601 datetime whose offset Postgres accepts and whose UTC instant Python can hold, returned in UTC."""

    def to_python(self, value):
        result = super().to_python(value)
        if result is None:
            return None
        if abs(result.utcoffset()) > MAX_UTC_OFFSET:
            raise ValidationError("The UTC offset must lie between -15:59 and +15:59.", code="invalid")
        try:
            return result.astimezone(UTC)
        except OverflowError:
            raise ValidationError("The instant must lie between the years 1 and 9999 in UTC.", code="invalid") from None


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = BoundedIsoDateTimeField


class FilterSet(django_filters.FilterSet):
    """The base of the API's filtersets: a model's datetime field filters with :class:`IsoDateTimeFilter`."""

    FILTER_DEFAULTS = {
        **django_filters.FilterSet.FILTER_DEFAULTS,
        models.DateTimeField: {"filter_class": IsoDateTimeFilter},
    }


class FilterBackend(DjangoFilterBackend):
    """DRF's filter backend; the filterset it builds from a view's ``filterset_fields`` derives from ours too."""

    filterset_base = FilterSet
