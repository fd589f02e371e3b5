"""/healthz: is this deployment able to take signatures and send mail? For load balancers.

Imported on the first probe, by operations/views.py (which says why).
"""

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor

from django.http import JsonResponse
from health_check.views import HealthCheckView

from operations.health import BeatCheck, DatabaseCheck, RedisCheck, WorkerHeartbeatCheck

# The names /healthz reports, in its order; a monitor's alert names the one that failed.
HEALTH_CHECKS = {
    "database": DatabaseCheck,
    "redis": RedisCheck,
    "worker": WorkerHeartbeatCheck,
    "beat": BeatCheck,
}


class HealthView(HealthCheckView):
    """Run every check at once; answer JSON, 200 when all pass and 503 when any fails.

    Anyone may ask, so the answer is each check's name and "ok" or "failing", and the age of
    the freshest worker heartbeat and of beat's last run in whole seconds: no host, version,
    queue, count or error text (those go to the log). Always JSON, whatever Accept says, and
    never cached (django-health-check's dispatch sets the headers).
    """

    @contextlib.contextmanager
    def get_executor(self):
        """Run the synchronous checks on threads that nobody waits for once they time out.

        asyncio's default executor is joined when the request's event loop closes, so a check
        stuck on a dead host would hold the answer long after its timeout said "failing".
        """
        executor = ThreadPoolExecutor(max_workers=len(HEALTH_CHECKS), thread_name_prefix="healthz")
        try:
            yield executor
        finally:
            executor.shutdown(wait=False, cancel_futures=True)

    async def get(self, request, *args, **kwargs):
        checks = {name: check() for name, check in HEALTH_CHECKS.items()}
        with self.get_executor() as executor:
            results = await asyncio.gather(
                *(check.get_result(executor) for check in checks.values())
            )
        failing = {name for name, result in zip(checks, results, strict=True) if result.error}
        body = {
            "status": "failing" if failing else "ok",
            "checks": {name: "failing" if name in failing else "ok" for name in checks},
            "worker_heartbeat_age_seconds": _whole_seconds(checks["worker"].age_seconds),
            "beat_last_run_age_seconds": _whole_seconds(checks["beat"].age_seconds),
        }
        return JsonResponse(body, status=503 if failing else 200)


def _whole_seconds(age: float | None) -> int | None:
    return None if age is None else round(age)
