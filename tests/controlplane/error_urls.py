"""The real URLs plus views that fail on purpose, for the error-shape tests of 409, 429 and 500."""

from django.urls import path
from rest_framework.throttling import AnonRateThrottle
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.models import AuditEvent
from controlplane.services import audit_record
from controlplane.urls import urlpatterns as real_urlpatterns


class ConflictView(APIView):
    def post(self, request):
        audit_record(action="half.written", resource_type="test", actor=request.user)
        raise ControlPlaneError(ErrorCode.ILLEGAL_TRANSITION, details={"current": "LAB", "requested": "LIVE"})


class CrashView(APIView):
    def post(self, request):
        audit_record(action="half.written", resource_type="test", actor=request.user)
        raise RuntimeError("password=hunter2 SELECT secret FROM vault")


class OncePerMinute(AnonRateThrottle):
    rate = "1/minute"
    scope = "error-test"


class ThrottledView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [OncePerMinute]

    def get(self, request):
        return Response({"count": AuditEvent.unscoped.count()})


urlpatterns = [
    path("api/test/conflict", ConflictView.as_view()),
    path("api/test/crash", CrashView.as_view()),
    path("api/test/throttled", ThrottledView.as_view()),
    *real_urlpatterns,
]
handler404 = "controlplane.errors.handler404"
handler500 = "controlplane.errors.handler500"
