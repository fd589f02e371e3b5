"""The Celery application: broker, queues, the periodic schedule, and the worker's logs."""

import gc
import logging.config
import os

from celery import Celery
from celery.signals import celeryd_after_setup, setup_logging
from django_structlog.celery.steps import DjangoStructLogInitStep

from config.heartbeats import WorkerHeartbeatStep

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("rally")
# Every Celery setting lives in Django settings under the CELERY_ prefix.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# A mailing's rooms keep their own tasks, so that a room queues work without importing a later
# one (the import contract in pyproject.toml).
app.autodiscover_tasks(["mailings.sending", "mailings.feedback"])
# Each worker says it is alive every few seconds, for /healthz and the operator's page.
app.steps["worker"].add(WorkerHeartbeatStep)
# Each task's lines carry its task id, and the request or task that queued it.
app.steps["worker"].add(DjangoStructLogInitStep)


@setup_logging.connect
def _logs_as_django_settings_say(loglevel=None, **kwargs) -> None:
    """Format the worker's lines as the web's (config/logs.py), not in Celery's own format.

    Connected, this replaces Celery's logging setup. The level stays the worker's --loglevel,
    as under Celery's own setup: the benchmarks and tests wait for its INFO "ready." line.
    """
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
    if loglevel:
        logging.getLogger().setLevel(loglevel)


@celeryd_after_setup.connect
def _share_imports_with_pool_processes(**kwargs) -> None:
    """Freeze what the worker's main process holds, just before it forks its pool processes.

    A pool process inherits the main process' memory page by page, shared until written. A
    garbage collection in it writes to the header of every object it visits, so without this
    each pool process soon holds its own copy of every module Django and Celery imported; frozen
    objects are never visited, and their pages stay shared (PSS in docs/performance.md, Memory).
    """
    gc.collect()
    gc.freeze()
