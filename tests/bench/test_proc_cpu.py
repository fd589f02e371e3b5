"""The /proc CPU meter that benchmarks print their CPU per message from."""

import subprocess
import sys

from bench.proc_cpu import CpuMeter, descendants, process_cpu_seconds

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
