"""The /proc CPU meter that benchmarks print their CPU per message from."""

import subprocess
import sys

import pytest
from django.db import connection, connections

from bench.proc_cpu import CpuMeter, descendants, postgres_processes_of, process_cpu_seconds

BUSY_LOOP = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"


def test_a_child_that_spins_is_measured_and_one_that_exited_still_counts():
    idle = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                            stdin=subprocess.PIPE)  # fmt: skip
    busy = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()\n" + BUSY_LOOP],
                            stdin=subprocess.PIPE)  # fmt: skip
    try:
        meter = CpuMeter({"idle": lambda: [idle.pid], "busy": lambda: [busy.pid]})
        meter.start()
        busy.stdin.close()  # Starts spinning, then exits after 0.3 s of CPU.
        # A sample while it still runs is what lets its CPU count after it exits.
        while process_cpu_seconds(busy.pid) is not None and busy.poll() is None:
            meter.sample()
        busy.wait()
        spent = meter.stop()
    finally:
        idle.kill()
        idle.wait()
    assert spent["idle"] < 0.1
    assert 0.2 <= spent["busy"] <= 1.0


def test_descendants_include_the_root_and_its_children():
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import subprocess, sys; c = subprocess.Popen([sys.executable, '-c', 'import sys; "
         "sys.stdin.read()'], stdin=subprocess.PIPE); print(c.pid, flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        child_pid = int(parent.stdout.readline())
        assert descendants([parent.pid]) >= {parent.pid, child_pid}
    finally:
        parent.stdin.close()
        parent.kill()
        parent.wait()


@pytest.mark.django_db(databases=["default"])
def test_a_databases_sessions_are_found_and_their_cpu_is_measured():
    """Benchmarks' "postgres" figures come from the sessions of their own database.

    Their own runs are too short to assert on (a backend's CPU is counted in 10 ms ticks),
    so the meter is checked here, on a query that keeps one backend busy for a while.
    """
    if connection.vendor != "postgresql":  # SQLite runs in the benchmark's own process
        assert postgres_processes_of(connection.settings_dict["NAME"]) == set()
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        own_backend = cursor.fetchone()[0]
    database = connection.settings_dict["NAME"]
    assert own_backend in postgres_processes_of(database)
    # Another database's session is not this benchmark's work; the server's own processes
    # (checkpointer, WAL writer) are counted only when asked for.
    other = connections.create_connection("default")
    other.settings_dict = {**other.settings_dict, "NAME": "postgres"}
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            other_backend = cursor.fetchone()[0]
        assert other_backend not in postgres_processes_of(database)
        assert other_backend not in postgres_processes_of(database, server_processes=True)
    finally:
        other.close()
    server = postgres_processes_of(database, server_processes=True) - postgres_processes_of(
        database
    )
    assert server, "the checkpointer and WAL writer are the server's own processes"

    meter = CpuMeter({"postgres": lambda: postgres_processes_of(database)})
    meter.start()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM generate_series(1, 3000000) AS n WHERE n % 7 = 0")
    spent = meter.stop()
    assert spent["postgres"] >= 0.05
