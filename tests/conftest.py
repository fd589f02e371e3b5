import pytest

from tests.processes import purge_test_redis, start_test_worker


def pytest_sessionfinish(session, exitstatus):
    """Fail the run when any test was skipped: CI must never pass on tests that did not run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and reporter.stats.get("skipped") and exitstatus == 0:
        reporter.write_line("FAILED: tests were skipped; every test must run.", red=True)
        session.exitstatus = 1


@pytest.fixture(autouse=True)
def empty_test_redis():
    """Start every test with an empty test Redis: no queued task, rate bucket or breaker count.

    Tasks or counters left by an earlier test name rows that no longer exist, or, on SQLite
    where ids are reused, rows that are some other test's.
    """
    purge_test_redis()


@pytest.fixture
def celery_worker_factory(transactional_db, tmp_path):
    """Start real `celery worker` processes against the test database and test Redis.

    Call it with environment overrides (EMAIL_BACKEND, ANYMAIL, …), and beat=True to run beat
    inside the worker; every worker started is stopped when the test ends.
    """
    workers = []

    def start(*, beat: bool = False, **env):
        worker = start_test_worker(
            env=env,
            log_path=tmp_path / f"worker{len(workers)}.log",
            beat_schedule=tmp_path / f"beat{len(workers)}" if beat else None,
        )
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
