"""The Content-Security-Policy header, from ``settings.CONTENT_SECURITY_POLICY`` (the policy and its reasons are
there). Django 5.2 has no CSP of its own (it arrives in 6.0, which needs Python 3.12), and django-csp would be a
library for one header."""

from django.conf import settings


def policy_header(policy: dict[str, list[str]]) -> str:
    return "; ".join(f"{directive} {' '.join(sources)}" for directive, sources in policy.items())


class ContentSecurityPolicyMiddleware:
    """Adds the policy to every answer that does not set its own."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.header = policy_header(settings.CONTENT_SECURITY_POLICY)

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.header)
        return response
