"""What a worker's main process holds before it forks its pool (docs/performance.md, Memory)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

# A worker's start-up, in a fresh interpreter: Django (the admin imports the compose path's
# modules), the task modules, then the signal Celery sends just before it forks the pool.
WORKER_START = """
import gc, json, sys
import django
django.setup()
from config.celery_app import app
app.loader.import_default_modules()
from celery.signals import celeryd_after_setup
loaded_before_fork = sorted({"lxml", "css_inline", "inscriptis"} & set(sys.modules))
celeryd_after_setup.send(sender="worker@test", instance=None, conf=app.conf)
frozen = gc.get_freeze_count()
from mailings.content.compose import compose_message
compose_message(preheader="", html_body="<p>Dear {{ first_name }}</p>", text_body="")
print(json.dumps({"loaded_before_fork": loaded_before_fork, "frozen": frozen,
                  "loaded_after_compose": sorted({"lxml", "css_inline", "inscriptis"}
                                                 & set(sys.modules))}))
"""


def test_a_worker_loads_the_compose_libraries_only_to_compose_and_freezes_before_forking():
    """lxml, css-inline and inscriptis stay out of the main process, which forks the pool; its
    objects are frozen, so a collection in a pool process does not copy their pages."""
    result = subprocess.run(  # noqa: S603 -- our own interpreter and script
        [sys.executable, "-c", WORKER_START],
        cwd=ROOT,
        env={**os.environ, "DJANGO_DEBUG": "false"},
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["loaded_before_fork"] == []
    assert found["frozen"] > 10_000
    # Composing a mailing, as a pool process does when it first compiles one, loads them.
    assert found["loaded_after_compose"] == ["css_inline", "inscriptis", "lxml"]
