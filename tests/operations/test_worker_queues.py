"""Every queue a task is routed to has a worker: `make run`'s and the compose file's consume all."""

import re
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def queues_consumed(text: str) -> set[str]:
    (queues,) = re.findall(r"worker\.py -A config\.celery_app worker -Q (\S+)", text)
    return set(queues.split(","))


@pytest.mark.parametrize("path", ["scripts/run.sh", "docker-compose.yml"])
def test_the_worker_consumes_every_queue_tasks_are_routed_to(path):
    declared = {queue.name for queue in settings.CELERY_TASK_QUEUES}
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert routed <= declared
    assert queues_consumed((ROOT / path).read_text()) == declared
    assert "webhooks" in declared
