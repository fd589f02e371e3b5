"""/healthz's URL, answered by operations/healthz.py, which is imported on the first probe.

django-health-check imports dnspython; the URLconf is imported by every process that runs
Django's checks, a send queue worker's too, and a worker's pool processes inherit what their
parent imported ([Memory] in docs/performance.md). Django's admin checks import every
middleware class, so HealthCheckMiddleware takes the view from here too. In the web process it
answers /healthz before any URL is resolved; this URL serves a stack without it.
"""

import functools


@functools.cache
def health_view():
    """Return the /healthz view, importing it and its checks the first time."""
    from operations.healthz import HealthView  # noqa: PLC0415 -- see the module's docstring

    return HealthView.as_view()


async def healthz(request):
    return await health_view()(request)
