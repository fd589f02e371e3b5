"""worker.py: Celery's command line for the worker, without the modules a worker never uses
(docs/performance.md, Memory)."""

import re

import pytest

from tests.processes import wait_for

# Packages a worker never uses, each held in every pool process when the main process has them:
# the interactive shells', the development tools' extras, /healthz's checks, requests' encoding
# guesser, and the HTML sanitiser (imported where a mailing is composed).
LEFT_OUT = (
    "click_repl", "prompt_toolkit", "rich", "pygments", "yaml", "greenlet", "charset_normalizer",
    "dns", "health_check", "nh3",
)  # fmt: skip


def loaded_packages(log: str) -> set[str]:
    """Return the packages `-X importtime` saw a module of loaded.

    It also lists an import that stopped at once (the launcher puts None in sys.modules for
    rich and pygments, as if they were not installed), so a package counts by its submodules:
    each left-out package loads some as soon as it is really imported.
    """
    modules = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*([\w.]+)", log, re.MULTILINE)
    return {module.split(".")[0] for module in modules if "." in module}


@pytest.mark.django_db(transaction=True)
def test_the_worker_starts_without_the_interactive_shells_and_health_checks(
    celery_worker_factory,
):
    # Python lists every module a process imports, and how long it took, on its standard error,
    # which the worker's log holds.
    worker = celery_worker_factory(PYTHONPROFILEIMPORTTIME="1")
    wait_for(lambda: " ready." in worker.log(), timeout=60, message=worker.log)

    loaded = loaded_packages(worker.log())
    assert {"celery", "django", "kombu", "mailings"} <= loaded  # the list is the whole start
    assert loaded.isdisjoint(LEFT_OUT), sorted(loaded & set(LEFT_OUT))
