import io
import json

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from bench.import_file import import_file_write
from supporters.models import ConsentRecord, Supporter, SupporterImport, Tag

SYNTHETIC = 1000


def test_the_file_has_the_mix_the_benchmark_names(tmp_path):
    expected = import_file_write(tmp_path / "f.csv", rows=1000, supporters=SYNTHETIC)
    # 2% invalid, 10% repeats (but row 1, which has no row 3 before it), 20% known.
    assert (expected.rows, expected.rejected, expected.merged) == (1000, 20, 99 + 200)
    assert expected.created == 1000 - 20 - 299


@pytest.mark.django_db(transaction=True)
def test_bench_import_reports_the_counts_the_file_was_made_with_and_cleans_up():
    """A tiny real run through a worker, on either database; its floor on PostgreSQL."""
    stdout = io.StringIO()
    call_command(
        "bench_import", rows=2000, supporters=SYNTHETIC,
        redis_db=int(settings.REDIS_URL.rsplit("/", 1)[1]), stdout=stdout, stderr=io.StringIO(),
    )  # fmt: skip

    result = json.loads(stdout.getvalue().strip().splitlines()[-1])
    assert {"rows", "created", "merged", "rejected", "seconds", "rows_per_s",
            "peak_rss_mb"} <= set(result)  # fmt: skip
    assert (result["rows"], result["created"], result["merged"], result["rejected"]) == (
        2000, 2000 - 40 - 599, 199 + 400, 40,
    )  # fmt: skip
    assert result["expected_ok"] is True
    assert result["peak_rss_mb"] > 0 and result["rows_per_s"] > 0
    # The yardstick and what each process spent (issue 20's keys).
    assert {"floor_seconds", "ratio_to_floor", "floor_seconds_before", "floor_seconds_after",
            "worker_cpu_seconds", "postgres_cpu_seconds", "floor_cpu_seconds",
            "cpu_ratio_to_floor"} <= set(result)  # fmt: skip
    assert result["worker_cpu_seconds"] > 0
    if connection.vendor == "postgresql":
        assert result["floor_seconds_before"] > 0 and result["floor_seconds_after"] > 0
        assert result["floor_seconds"] == pytest.approx(
            (result["floor_seconds_before"] + result["floor_seconds_after"]) / 2, abs=0.001
        )
        assert result["ratio_to_floor"] == round(result["seconds"] / result["floor_seconds"], 2)
        # A tiny run may spend less than a tick (10 ms) in a process: the meter itself is
        # tested in test_proc_cpu.py, and here only what the line is made of.
        assert result["postgres_cpu_seconds"] >= 0 and result["floor_cpu_seconds"] >= 0
        import_cpu = result["worker_cpu_seconds"] + result["postgres_cpu_seconds"]
        if result["floor_cpu_seconds"]:
            assert result["cpu_ratio_to_floor"] == pytest.approx(
                import_cpu / result["floor_cpu_seconds"], abs=0.01
            )
        else:
            assert result["cpu_ratio_to_floor"] is None
        with connection.cursor() as cursor:  # the floor's scratch table is dropped
            cursor.execute("SELECT to_regclass('bench_import_floor')")
            assert cursor.fetchone()[0] is None
    else:  # the floor is PostgreSQL's COPY: none on SQLite
        assert result["floor_seconds"] is None and result["ratio_to_floor"] is None
        assert result["floor_cpu_seconds"] is None and result["cpu_ratio_to_floor"] is None
    # What the import made is gone; the synthetic supporters stay, as they were.
    assert Supporter.objects.count() == SYNTHETIC
    assert not ConsentRecord.objects.exists() and not Supporter.tags.through.objects.exists()
    assert not SupporterImport.objects.exists() and not Tag.objects.exists()
