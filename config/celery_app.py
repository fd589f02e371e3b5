"""The Celery application: broker, queues and the periodic schedule."""

import os

from celery import Celery

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
