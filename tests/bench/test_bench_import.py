import io
import json

import pytest
from django.conf import settings
from django.core.management import call_command

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
    """A tiny real run through a worker, on either database."""
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
    # What the import made is gone; the synthetic supporters stay, as they were.
    assert Supporter.objects.count() == SYNTHETIC
    assert not ConsentRecord.objects.exists() and not Supporter.tags.through.objects.exists()
    assert not SupporterImport.objects.exists() and not Tag.objects.exists()
