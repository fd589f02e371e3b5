"""Check that a fake's server process never outlives its owner."""

from __future__ import annotations

import gc
import os

import pytest

from espfakes import FakePostmark, FakeSMTP


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_server_process_is_stopped_when_the_with_block_fails() -> None:
    with pytest.raises(RuntimeError, match="boom"), FakeSMTP() as sink:
        pid = sink.pid
        assert pid is not None and _alive(pid)
        raise RuntimeError("boom")

    assert not _alive(pid)
    assert not sink.running


def test_server_process_is_killed_when_its_owner_is_collected() -> None:
    esp = FakePostmark().start()
    pid = esp.pid
    assert pid is not None and _alive(pid)

    del esp
    gc.collect()

    assert not _alive(pid)
