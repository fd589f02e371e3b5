"""An import's lanes: database sessions that merge shares of one file at the same time.

PostgreSQL runs a session's statements on one core, and most of a large import is the merge's
SQL and the checks of its foreign keys. So the rows are split by address into lanes, each
merged by its own session (a thread: Django gives each thread its own connection). All rows of
one address go to one lane, so a lane's merge is the whole merge for its people, by the same
statements (merge.py), and lanes never wait for each other's rows: they share only the tags.

All or nothing, as one transaction was:
1. each lane merges in its own transaction, checks its foreign keys there and then (SET
   CONSTRAINTS ALL IMMEDIATE) rather than at commit, and records its part
   (SupporterImportPart); the last lane also writes the outcome (`finish`);
2. every lane waits until all have got that far: a failure anywhere before rolls every lane
   back, and nothing was imported;
3. then they commit one after another. Only a crash can come between two commits, and the run
   Celery delivers again merges only the lanes without a part (`done`).

One lane (SQLite, a single core, or a caller's open transaction that the rows must see) runs
in the calling thread, on its connection, with the same steps.
"""

import queue
import threading
from collections.abc import Callable
from dataclasses import asdict

from django.conf import settings
from django.db import connection, transaction

from .merge import MergeCounts
from .models import SupporterImportPart
from .staging import staging_create, staging_drop, staging_write

# Chunks of staged rows waiting for a lane's COPY: one keeps it busy while the reader cleans
# the next rows; more would only hold more rows in the worker's memory.
QUEUED_CHUNKS = 1


def lanes_wanted() -> int:
    """Return how many lanes a new import should use on this connection."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return 1
    return max(1, settings.RALLY_IMPORT_LANES)


def lane_of(staged: tuple, lanes: int) -> int:
    """Return the lane of a staged row: by its address's keyed hash, or by line if it has none.

    The hash is keyed by a setting, not the process, so a resumed run splits the same way.
    """
    email_hash = staged[2]
    if email_hash is None:
        return staged[0] % lanes
    return int(email_hash[:8], 16) % lanes


class _Aborted(Exception):
    """Another lane failed: roll this one back."""


class LaneSet:
    """Stage rows into the lanes still to merge, then merge and commit them all or none.

    `merge(lane, rows_table)` runs a lane's statements and returns its counts; `finish(counts)`
    is given every lane's counts (as dicts, by lane, with those of lanes merged by an earlier
    run) and runs in the last lane's transaction. Both run in the lane's own thread.
    """

    def __init__(
        self,
        *,
        import_id: int,
        lanes: int,
        done: dict[int, dict],
        merge: Callable[[int, str], MergeCounts],
        finish: Callable[[dict[int, dict]], None],
    ):
        self.import_id = import_id
        self.lanes = lanes
        self.todo = [lane for lane in range(lanes) if lane not in done]
        self.counts: dict[int, dict] = dict(done)
        self._merge, self._finish = merge, finish
        self._threaded = len(self.todo) > 1
        parties = len(self.todo)
        self._merged = threading.Barrier(parties)
        self._finished = threading.Barrier(parties)
        self._turns = {lane: threading.Event() for lane in self.todo}
        self._failed = threading.Event()
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._queues = {lane: queue.Queue(QUEUED_CHUNKS) for lane in self.todo}
        self._tables: dict[int, str] = {}
        self._threads: list[threading.Thread] = []
        self._staging_ended = False

    def __enter__(self) -> "LaneSet":
        if self._threaded:
            for lane in self.todo:
                thread = threading.Thread(
                    target=self._lane_thread, args=(lane,), name=f"import-{self.import_id}-{lane}"
                )
                thread.start()
                self._threads.append(thread)
        else:
            for lane in self.todo:
                self._tables[lane] = staging_create(self.import_id, lane)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._threaded:
            if exc_info[0] is not None:
                self._fail(exc_info[1])
            self._end_staging()
            for thread in self._threads:
                thread.join()
            if isinstance(exc_info[1], _Aborted) and self._error is not None:
                # The reader stopped because a lane failed: the lane's error is the one to tell.
                raise self._error
        else:
            for lane in self.todo:
                staging_drop(self.import_id, lane)

    def write(self, lane: int, rows: list[tuple]) -> None:
        """Stage a chunk of rows of one lane (a lane already merged takes none)."""
        if lane not in self._queues:
            return
        if not self._threaded:
            staging_write(self._tables[lane], rows)
            return
        if self._failed.is_set():
            raise _Aborted("a lane failed while staging")
        self._queues[lane].put(rows)

    def merge(self) -> None:
        """Merge every lane still to do and commit them; raise the first lane's error if any."""
        if not self._threaded:
            for lane in self.todo:
                self._lane_merge(lane, self._tables[lane])
            return
        self._end_staging()
        for thread in self._threads:
            thread.join()
        if self._error is not None:
            raise self._error

    # The lanes' side.

    def _lane_thread(self, lane: int) -> None:
        try:
            rows_table = staging_create(self.import_id, lane)
            while (rows := self._queues[lane].get()) is not None:
                if not self._failed.is_set():
                    staging_write(rows_table, rows)
            if not self._failed.is_set():
                self._lane_merge(lane, rows_table)
        except BaseException as error:  # noqa: BLE001 - handed to the reader's thread
            self._fail(error)
            # Free the reader if it is blocked on this lane's full queue: it sees the failure
            # before its next chunk. (The other lanes go on taking theirs, and drop them.)
            while True:
                try:
                    self._queues[lane].get_nowait()
                except queue.Empty:
                    break
        finally:
            # The session's end drops its temporary tables, and gives back their buffers.
            connection.close()

    def _lane_merge(self, lane: int, rows_table: str) -> None:
        with transaction.atomic():
            counts = self._merge(lane, rows_table)
            if self._threaded:
                # Checked now, in every lane at once, so that only commits are left at the end.
                with connection.cursor() as cursor:
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            SupporterImportPart.objects.create(
                supporter_import_id=self.import_id,
                lane=lane,
                lanes=self.lanes,
                counts=asdict(counts),
            )
            with self._lock:
                self.counts[lane] = asdict(counts)
            self._wait(self._merged)
            if lane == self.todo[-1]:
                self._finish(dict(sorted(self.counts.items())))
            self._wait(self._finished)
            if lane != self.todo[0]:
                self._turns[lane].wait()
                if self._failed.is_set():
                    raise _Aborted("an earlier lane failed to commit")
        self._pass_turn(lane)

    def _wait(self, barrier: threading.Barrier) -> None:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            raise _Aborted("another lane failed") from None

    def _pass_turn(self, lane: int) -> None:
        later = self.todo[self.todo.index(lane) + 1 :]
        if later:
            self._turns[later[0]].set()

    def _fail(self, error: BaseException) -> None:
        with self._lock:
            if self._error is None and not isinstance(error, _Aborted):
                self._error = error
        self._failed.set()
        self._merged.abort()
        self._finished.abort()
        for event in self._turns.values():
            event.set()

    def _end_staging(self) -> None:
        """Tell every lane that its rows are all staged (once; a lane that died needs not)."""
        if self._staging_ended:
            return
        self._staging_ended = True
        for thread, chunks in zip(self._threads, self._queues.values(), strict=True):
            # A live lane takes its chunks promptly; a lane that failed may have left a full
            # queue behind, and nobody to empty it.
            while thread.is_alive():
                try:
                    chunks.put(None, timeout=1)
                    break
                except queue.Full:
                    continue
