"""Group commit: concurrent requests of one process share a transaction, each told after commit.

What a surge of signers costs the database is mostly per statement, not per row: ten
signatures in one statement cost PostgreSQL a fraction of the CPU of ten statements
(docs/performance.md, "Group commit"). So the web process's threads hand their writes
to a GroupCommit. The first thread to arrive becomes the leader: it writes what is queued, its
own item included, in one call of `write_batch` (one transaction), hands leadership to the
oldest thread still waiting, and tells every thread of its batch how its item went. While one batch
is being written the next one gathers, so batches grow with the load and a lone request is
written at once, alone: nobody waits for a timer.

Every thread writes on its own database connection, as Django's connections are per thread,
so a batch commits exactly where a single write would have (in a test, inside the test's
transaction). Under gunicorn's sync workers, or any server with one request at a time per
process, every batch is a batch of one.
"""

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


class BatchAbandoned(RuntimeError):
    """The thread writing a batch stopped before it could say how the batch went."""


class _Waiter(Generic[Item, Result]):
    __slots__ = ("item", "ready", "leads", "result", "error")

    def __init__(self, item: Item):
        self.item = item
        self.ready = threading.Event()
        self.leads = False  # set with `ready` when this thread is to write the next batch
        self.result: Result | None = None
        # Until the batch is written: what a waiter whose leader never got that far raises.
        self.error: BaseException | None = BatchAbandoned(
            "The batch this write was in was abandoned."
        )


class GroupCommit(Generic[Item, Result]):
    """Write items submitted by concurrent threads in batches, one batch at a time.

    `write_batch(items)` must write all of them in one transaction, commit, and return one
    result per item in the same order; when it raises, each item of that batch is written
    again on its own, so that one bad item fails only its own request.
    """

    def __init__(self, write_batch: Callable[[Sequence[Item]], Sequence[Result]], *, max_batch):
        self._write_batch = write_batch
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Waiter[Item, Result]] = []
        self._leader_busy = False

    @property
    def queued(self) -> int:
        """How many submitted items wait for a batch to take them."""
        with self._lock:
            return len(self._queue)

    def submit(self, item: Item) -> Result:
        """Write `item` (in a batch with whatever else is waiting); return once committed."""
        waiter = _Waiter(item)
        with self._lock:
            self._queue.append(waiter)
            leads = not self._leader_busy
            self._leader_busy = True
        if not leads:
            waiter.ready.wait()
            leads = waiter.leads
        if leads:
            self._lead()
        if waiter.error is not None:
            raise waiter.error
        return waiter.result  # type: ignore[return-value]

    def _lead(self) -> None:
        """Write the oldest waiting items (the leader's own is first), then pass the lead on."""
        with self._lock:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
        try:
            self._write(batch)
        finally:
            with self._lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.leads = True
                    successor.ready.set()
                else:
                    self._leader_busy = False
            for waiter in batch:
                waiter.ready.set()

    def _write(self, batch: list[_Waiter[Item, Result]]) -> None:
        try:
            results = self._write_batch([waiter.item for waiter in batch])
        except Exception as error:
            if len(batch) == 1:
                batch[0].error = error
                return
            logger.warning("A batch of %d failed (%s); writing each alone", len(batch), error)
            for waiter in batch:
                try:
                    (waiter.result,) = self._write_batch([waiter.item])
                    waiter.error = None
                except Exception as item_error:
                    waiter.error = item_error
            return
        for waiter, result in zip(batch, results, strict=True):
            waiter.result, waiter.error = result, None
