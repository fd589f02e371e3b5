"""CPU time of processes from /proc (Linux): what each part of a benchmark spent, per process.

Benchmarks print CPU seconds per message (or per signature) beside their rates: unlike a rate,
which moves with whatever else the shared machine runs, the CPU a unit of work costs travels.
A sample is taken before and after the timed part, by process; a process that exited in
between is counted with what it had spent at the last sample that saw it.
"""

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float | None:
    """Return the user + system CPU seconds a process has used, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name, in parentheses, may hold spaces: fields are counted after its end.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_parents() -> dict[int, int]:
    """Return every process' parent, by pid."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def descendants(root_pids: Iterable[int]) -> set[int]:
    """Return the pids of processes and all their descendants."""
    children: dict[int, list[int]] = {}
    for pid, parent in process_parents().items():
        children.setdefault(parent, []).append(pid)
    found: set[int] = set()
    pending = list(root_pids)
    while pending:
        pid = pending.pop()
        if pid in found:
            continue
        found.add(pid)
        pending.extend(children.get(pid, []))
    return found


def processes_named(name: str) -> set[int]:
    """Return the pids whose command name (/proc/<pid>/comm) starts with `name`."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm.startswith(name):
            pids.add(int(entry.name))
    return pids


@dataclass
class CpuMeter:
    """CPU seconds spent between `start` and `stop` by named groups of processes.

    Each group is a function returning its pids at the time of a sample (pool children come and
    go; PostgreSQL starts a backend per connection), so every sample asks again.
    """

    groups: dict[str, Callable[[], Iterable[int]]]
    _first: dict[str, dict[int, float]] = field(default_factory=dict)
    _last: dict[str, dict[int, float]] = field(default_factory=dict)

    def _sample(self) -> dict[str, dict[int, float]]:
        sample = {}
        for name, pids_of in self.groups.items():
            seconds = {}
            for pid in pids_of():
                used = process_cpu_seconds(pid)
                if used is not None:
                    seconds[pid] = used
            sample[name] = seconds
        return sample

    def start(self) -> None:
        self._first = self._sample()
        self._last = {name: dict(seconds) for name, seconds in self._first.items()}

    def sample(self) -> None:
        """Take an intermediate sample, so processes that exit before `stop` still count."""
        for name, seconds in self._sample().items():
            self._last.setdefault(name, {}).update(seconds)

    def stop(self) -> dict[str, float]:
        """Return CPU seconds per group since `start`; a process started since counts whole."""
        self.sample()
        return {
            name: round(
                sum(used - self._first.get(name, {}).get(pid, 0.0) for pid, used in last.items()),
                3,
            )
            for name, last in self._last.items()
        }


def own_process() -> list[int]:
    return [os.getpid()]


def postgres_processes_of(database: str, *, server_processes: bool = False) -> set[int]:
    """Return PostgreSQL's processes working for `database`: the sessions connected to it and
    the autovacuum workers in it, and with `server_processes` the server's own (WAL writer,
    checkpointer, parallel workers), which serve every database.

    Other databases' sessions on a shared server are not a benchmark's work. A session's
    command line reads `postgres: 15/main: <user> <database> <host>(<port>) <state>`.
    """
    pids = set()
    for pid in processes_named("postgres"):
        try:
            words = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").split()
        except OSError:
            continue
        session = any(b"(" in word for word in words) or b"autovacuum" in words
        if database.encode() in words[1:] or (server_processes and not session):
            pids.add(pid)
    return pids


def redis_servers() -> set[int]:
    return processes_named("redis-server")
