"""GroupCommit: concurrent submits share batches, each thread gets its own outcome."""

import threading
import time

import pytest

from config.lib.group_commit import BatchAbandoned, GroupCommit


def wait_until(condition, timeout=10.0):
    """Wait for a condition that other threads bring about; fail the test if they never do."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.001)


class RecordingWriter:
    """A write_batch that records its batches and can hold the first one until released."""

    def __init__(self, hold_first=False):
        self.batches: list[list] = []
        self.first_started = threading.Event()
        self.release_first = threading.Event()
        if not hold_first:
            self.release_first.set()

    def __call__(self, items):
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.first_started.set()
            assert self.release_first.wait(10)
        if any(item == "bad" for item in items):
            raise ValueError("bad item")
        return [f"done:{item}" for item in items]


def submit_in_threads(committer, items):
    results, errors = {}, {}

    def run(item):
        try:
            results[item] = committer.submit(item)
        except Exception as error:
            errors[item] = error

    threads = [threading.Thread(target=run, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    return threads, results, errors


def submit_behind_a_held_write(committer, writer, items):
    """Submit `items` while a first write is in progress, then let it finish; return outcomes."""
    first, first_results, _ = submit_in_threads(committer, ["first"])
    assert writer.first_started.wait(10)
    threads, results, errors = submit_in_threads(committer, items)
    wait_until(lambda: committer.queued == len(items))
    writer.release_first.set()
    for thread in [*first, *threads]:
        thread.join(10)
    assert first_results == {"first": "done:first"}
    assert committer.queued == 0
    return results, errors


def test_a_lone_submit_is_written_at_once_alone():
    writer = RecordingWriter()
    committer = GroupCommit(writer, max_batch=10)
    assert committer.submit("a") == "done:a"
    assert writer.batches == [["a"]]


def test_submits_that_arrive_during_a_write_share_the_next_batch():
    writer = RecordingWriter(hold_first=True)
    others = [f"item{n}" for n in range(20)]
    results, errors = submit_behind_a_held_write(GroupCommit(writer, max_batch=100), writer, others)
    # Everything that queued behind the first write went in one more batch.
    assert writer.batches[0] == ["first"]
    assert len(writer.batches) == 2 and sorted(writer.batches[1]) == sorted(others)
    assert results == {item: f"done:{item}" for item in others} and not errors


def test_batches_are_capped_and_every_waiter_is_written():
    writer = RecordingWriter(hold_first=True)
    others = [f"item{n}" for n in range(10)]
    results, errors = submit_behind_a_held_write(GroupCommit(writer, max_batch=4), writer, others)
    assert [len(batch) for batch in writer.batches] == [1, 4, 4, 2]
    assert len(results) == 10 and not errors


def test_a_failing_batch_is_written_again_item_by_item_and_fails_only_its_bad_item():
    writer = RecordingWriter(hold_first=True)
    committer = GroupCommit(writer, max_batch=100)
    results, errors = submit_behind_a_held_write(committer, writer, ["good1", "bad", "good2"])
    assert results == {"good1": "done:good1", "good2": "done:good2"}
    assert isinstance(errors["bad"], ValueError)
    # The shared batch failed, then each of its items went alone.
    assert sorted(writer.batches[1]) == ["bad", "good1", "good2"]
    assert sorted(map(tuple, writer.batches[2:])) == [("bad",), ("good1",), ("good2",)]


def test_an_error_in_a_lone_write_reaches_its_caller_and_the_next_submit_still_leads():
    committer = GroupCommit(RecordingWriter(), max_batch=10)
    with pytest.raises(ValueError, match="bad item"):
        committer.submit("bad")
    assert committer.submit("after") == "done:after"


def test_waiters_of_a_leader_that_dies_mid_batch_get_an_error_not_a_made_up_result():
    class LeaderDies(BaseException):
        """Stands for what no `except Exception` catches, e.g. a worker being shut down."""

    writer = RecordingWriter(hold_first=True)

    def write_batch(items):
        result = writer(items)
        if len(writer.batches) == 2:
            raise LeaderDies
        return result

    committer = GroupCommit(write_batch, max_batch=100)
    first, _, _ = submit_in_threads(committer, ["first"])
    assert writer.first_started.wait(10)
    errors, leader = {}, []

    def run(item):
        try:
            committer.submit(item)
        except BatchAbandoned as error:
            errors[item] = error
        except LeaderDies:
            leader.append(item)

    threads = [threading.Thread(target=run, args=(f"item{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    wait_until(lambda: committer.queued == 3)
    writer.release_first.set()
    for thread in [*first, *threads]:
        thread.join(10)
    # The leader of the second batch saw its own exception; the other two were told.
    assert len(leader) == 1 and len(errors) == 2
    # And the next submit still finds a leader.
    assert committer.submit("after") == "done:after"
