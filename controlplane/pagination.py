"""The one pagination of every list endpoint: ``limit`` and ``offset`` are bounded integers, or the request is a
400 ``VALIDATION_ERROR`` naming the parameter.

DRF's ``LimitOffsetPagination`` ignores a malformed value (silently answering the default page) and passes an
unbounded one to the database: ``limit=9223372036854775808`` reached Postgres as a bigint out of range, a 500 on
every list endpoint. Failing closed means saying which parameter is wrong instead.
"""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination

MAX_LIMIT = 500
MAX_OFFSET = 2**31 - 1  # far past any list we keep, and well inside the bigint Postgres takes for OFFSET


class PageQuery(serializers.Serializer):
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT)
    offset = serializers.IntegerField(required=False, min_value=0, max_value=MAX_OFFSET)


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """``LimitOffsetPagination`` whose ``limit`` (1 to MAX_LIMIT) and ``offset`` (0 to MAX_OFFSET) are validated."""

    max_limit = MAX_LIMIT

    def paginate_queryset(self, queryset, request, view=None):
        query = PageQuery(
            data={
                name: request.query_params[name]
                for name in (self.limit_query_param, self.offset_query_param)
                if name in request.query_params
            }
        )
        query.is_valid(raise_exception=True)
        self._page = query.validated_data
        return super().paginate_queryset(queryset, request, view)

    def get_limit(self, request):
        return self._page.get("limit", self.default_limit)

    def get_offset(self, request):
        return self._page.get("offset", 0)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        bounds = {self.limit_query_param: (1, MAX_LIMIT), self.offset_query_param: (0, MAX_OFFSET)}
        for parameter in parameters:
            low, high = bounds[parameter["name"]]
            parameter["schema"] |= {"minimum": low, "maximum": high}
        return parameters
