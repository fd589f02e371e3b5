"""Answer /healthz before any other middleware: no host check, redirect, session or log line."""

from asgiref.sync import async_to_sync

from operations.views import health_view

HEALTH_PATHS = frozenset({"/healthz", "/healthz/"})


class HealthCheckMiddleware:
    """Serve /healthz ahead of the rest of the stack; first in MIDDLEWARE.

    A load balancer or container runtime asks by the machine's address, which is not in
    ALLOWED_HOSTS, over plain HTTP from inside the network: CommonMiddleware would refuse the
    host (400) and SecurityMiddleware redirect it to HTTPS (301). Neither protects anything
    here, as the answer builds no URL and carries nothing secret. Skipping the rest also keeps
    probes out of the request log and off the session and locale machinery.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.health_view = async_to_sync(health_view())

    def __call__(self, request):
        # Probes only read; any other method takes the usual way (and meets CSRF, then a 405).
        if request.path_info in HEALTH_PATHS and request.method in ("GET", "HEAD"):
            return self.health_view(request)
        return self.get_response(request)
