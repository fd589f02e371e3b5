"""An import merged in lanes: split by address, all lanes or none, resumed after a crash.

On PostgreSQL the lanes are sessions in threads; SQLite has one writer, so it merges in one
lane, in the calling thread, and these tests check that it does.
"""

import io
import json
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import connection

from supporters.imports import lanes, services
from supporters.imports.lanes import LaneSet, lane_of, lanes_wanted
from supporters.imports.services import supporter_import_run
from supporters.models import (
    ConsentRecord,
    Supporter,
    SupporterAuditEntry,
    SupporterImport,
    SupporterImportPart,
    SupporterImportRejection,
)
from tests.factories import SupporterFactory

CONSENT = ["--consent-source", "Stall at the book fair", "--consent-wording", "Email me"]
ROWS = 400


def file_write(tmp_path):
    """Write a file whose people fall in every lane, with repeats, known people and bad rows."""
    lines = ["Email,First name,Last name"]
    for i in range(ROWS):
        if i % 20 == 0:
            lines.append(f"not-an-address-{i},Bad,Row")
        elif i % 10 == 1 and i > 10:
            lines.append(f"PERSON-{i - 3}@EXAMPLE.ORG,,Again")
        elif i % 10 == 2:
            lines.append(f"known-{i}@example.org,Known,Filled")
        else:
            lines.append(f"person-{i}@example.org,Person {i},")
    path = tmp_path / "list.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def import_command(path) -> dict:
    stdout = io.StringIO()
    call_command("supporters_import", str(path), "--tag", "fair", *CONSENT, stdout=stdout,
                 stderr=io.StringIO())  # fmt: skip
    return json.loads(stdout.getvalue().strip().splitlines()[-1])


def known_people():
    return [SupporterFactory(email=f"known-{i}@example.org", first_name="", last_name="")
            for i in range(2, ROWS, 10)]  # fmt: skip


def outcome() -> dict:
    """Return what an import left in the list, in a form two runs can be compared by."""
    return {
        "supporters": sorted(
            Supporter.objects.values_list("email", "first_name", "last_name", "status")
        ),
        "tagged": sorted(Supporter.objects.filter(tags__name="fair").values_list("email")),
        "consents": sorted(ConsentRecord.objects.values_list("supporter__email", "wording")),
        "rejections": sorted(SupporterImportRejection.objects.values_list("line", "reason")),
        "audit": SupporterAuditEntry.objects.filter(action="import").count(),
    }


# 20 bad rows, 39 repeats, 40 known people, 301 new: 341 people tagged and given consent.
EXPECTED_COUNTS = {"rows": 400, "created": 301, "merged": 79, "rejected": 20}
PEOPLE = 341


@pytest.mark.django_db(transaction=True)
def test_an_import_split_over_lanes_does_what_one_lane_does(tmp_path, settings):
    path = file_write(tmp_path)
    settings.RALLY_IMPORT_LANES = 1
    known_people()
    one = import_command(path)
    in_one_lane = outcome()
    Supporter.objects.all().delete()
    SupporterImport.objects.all().delete()
    SupporterAuditEntry.objects.all().delete()

    settings.RALLY_IMPORT_LANES = 3
    known_people()
    split = import_command(path)

    assert {key: one[key] for key in EXPECTED_COUNTS} == EXPECTED_COUNTS
    assert {key: split[key] for key in EXPECTED_COUNTS} == EXPECTED_COUNTS
    assert outcome() == in_one_lane
    lanes_used = 3 if connection.vendor == "postgresql" else 1
    parts = SupporterImportPart.objects.all()
    assert [(part.lane, part.lanes) for part in parts] == [
        (lane, lanes_used) for lane in range(lanes_used)
    ]
    if lanes_used > 1:
        # Every lane had people of its own: the split is by address, not one lane for all.
        assert all(part.counts["created"] > 0 for part in parts)


def test_rows_of_one_address_go_to_one_lane_and_rows_without_one_by_line():
    first = (7, "ann@example.org", "9f86d081884c7d65", "", "", "", "", "", None, None)
    again = (90, "ann@example.org", "9f86d081884c7d65", "Ann", "", "", "", "", None, None)
    assert lane_of(first, 4) == lane_of(again, 4) == 0x9F86D081 % 4
    assert lane_of((10, None, None, "", "", "", "", "", "no email address", ""), 4) == 2


@pytest.fixture
def two_lanes(settings):
    """Two lanes where the database runs them (one on SQLite), known people; the last lane."""
    settings.RALLY_IMPORT_LANES = 2
    known_people()
    return lanes_wanted() - 1


@pytest.mark.django_db(transaction=True)
def test_a_lane_that_fails_rolls_every_lane_back(tmp_path, two_lanes):
    before, merge, last_lane = outcome(), services.staging_merge, two_lanes

    def last_lane_fails(**kwargs):
        counts = merge(**kwargs)
        if kwargs["rows_table"].endswith(f"_{last_lane}"):
            raise RuntimeError("the server went away")
        return counts

    with (
        mock.patch.object(services, "staging_merge", last_lane_fails),
        pytest.raises(RuntimeError, match="went away"),
    ):
        import_command(file_write(tmp_path))

    assert outcome() == before
    assert not SupporterImportPart.objects.exists()
    failed = SupporterImport.objects.get()
    assert failed.status == "failed" and "nothing was imported" in failed.error


@pytest.mark.django_db(transaction=True)
def test_a_lane_that_fails_while_staging_stops_the_reader_and_the_other_lanes(tmp_path, two_lanes):
    before, write, last_lane = outcome(), lanes.staging_write, two_lanes
    written = []

    def copy_breaks_on_the_third_chunk(table, rows):
        if table.endswith(f"_{last_lane}"):
            written.append(len(rows))
            if len(written) == 3:
                raise RuntimeError("could not extend file: no space left on device")
        write(table, rows)

    # Chunks of a few rows, so that the reader is still reading when the lane fails.
    with (
        mock.patch.object(services, "STAGING_CHUNK", 8),
        mock.patch.object(lanes, "staging_write", copy_breaks_on_the_third_chunk),
        pytest.raises(RuntimeError, match="no space left"),
    ):
        import_command(file_write(tmp_path))

    assert outcome() == before and not SupporterImportPart.objects.exists()
    assert SupporterImport.objects.get().status == "failed"


@pytest.mark.django_db(transaction=True)
def test_a_crash_between_two_lanes_commits_is_resumed_by_the_next_run(tmp_path, two_lanes):
    path = file_write(tmp_path)
    if connection.vendor != "postgresql":
        # One lane, one transaction: there is no second commit to crash before.
        assert lanes_wanted() == 1
        result = import_command(path)
        assert {key: result[key] for key in EXPECTED_COUNTS} == EXPECTED_COUNTS
        return
    pass_turn = LaneSet._pass_turn

    def connection_lost_after_the_first_commit(self, lane):
        pass_turn(self, lane)
        raise RuntimeError("the connection was lost")

    with (
        mock.patch.object(LaneSet, "_pass_turn", connection_lost_after_the_first_commit),
        pytest.raises(RuntimeError, match="connection was lost"),
    ):
        import_command(path)
    interrupted = SupporterImport.objects.get()
    assert [part.lane for part in SupporterImportPart.objects.all()] == [0]
    assert "after committing 1 of 2 parts" in interrupted.error
    assert interrupted.status == "failed"

    # As a killed worker would leave it, and as Celery then runs it again (acks late).
    SupporterImport.objects.filter(pk=interrupted.pk).update(status="merging", error="")
    with path.open("rb") as stream:
        done = supporter_import_run(import_id=interrupted.pk, stream=stream)

    assert (done.status, done.rows, done.created, done.merged, done.rejected) == (
        "done",
        *EXPECTED_COUNTS.values(),
    )
    assert [part.lane for part in SupporterImportPart.objects.all()] == [0, 1]
    resumed = outcome()
    # Each person once: tagged once, one consent record each, nobody counted in two lanes.
    assert len(resumed["consents"]) == len({email for email, _ in resumed["consents"]}) == PEOPLE
    assert len(resumed["tagged"]) == PEOPLE and len(resumed["rejections"]) == 20
    assert resumed["audit"] == 1


def test_lanes_run_in_threads_only_on_postgresql_outside_a_transaction(settings):
    settings.RALLY_IMPORT_LANES = 4
    assert not connection.in_atomic_block
    assert lanes_wanted() == (4 if connection.vendor == "postgresql" else 1)
