"""A large generated file with every fault at once, through the same service the admin uses."""

import io
import json

import pytest
from django.core.management import call_command

from supporters.models import (
    ConsentRecord,
    Supporter,
    SupporterAuditEntry,
    SupporterImport,
    SupporterImportRejection,
    Tag,
)
from tests.supporters.imports.fault_file import fault_file_write

FLAVOURS = {
    # A UTF-8 export from Excel: BOM, CRLF, semicolons.
    "utf8-bom-crlf-semicolons": {"encoding": "utf-8", "delimiter": ";", "newline": "\r\n"},
    # A Russian Windows export: cp1251, tabs, LF.
    "cp1251-tabs": {"encoding": "cp1251", "delimiter": "\t", "newline": "\n"},
}


def import_command(path, *extra) -> dict:
    stdout = io.StringIO()
    call_command(
        "supporters_import", str(path), "--tag", "imported", "--tag", "autumn-2025",
        "--consent-source", "Paper petition, Berlin march", "--consent-wording", "Email me",
        *extra, stdout=stdout, stderr=io.StringIO(),
    )  # fmt: skip
    return json.loads(stdout.getvalue().strip().splitlines()[-1])


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("flavour", "rows"), [("utf8-bom-crlf-semicolons", 100_000),
                                               ("cp1251-tabs", 20_000)])  # fmt: skip
def test_a_faulty_file_imports_every_good_row_and_reports_every_bad_one(tmp_path, flavour, rows):
    path = tmp_path / "list.csv"
    plan = fault_file_write(path, rows=rows, **FLAVOURS[flavour])
    before = dict(Supporter.objects.values_list("email", "status"))

    result = import_command(path)

    assert (result["rows"], result["created"], result["merged"], result["rejected"]) == (
        plan.rows, plan.created, plan.merged, plan.rejected,
    )  # fmt: skip
    assert result["duplicates_in_file"] == plan.duplicates
    assert result["delimiter"] == FLAVOURS[flavour]["delimiter"]
    assert result["encoding"].startswith("UTF-8" if flavour.startswith("utf8") else "Windows-1251")
    # Statuses: every known supporter keeps theirs; the new are subscribed.
    after = dict(Supporter.objects.values_list("email", "status"))
    assert {email: after[email] for email in before} == before
    new = Supporter.objects.exclude(email__in=before)
    assert new.count() == plan.created
    assert set(new.values_list("status", flat=True)) == {"subscribed"}
    assert set(new.values_list("source", flat=True)) == {f"import:{result['import_id']}:list.csv"}
    # Known supporters get only what they lacked: their country (FR) stays.
    known = Supporter.objects.filter(email__in=before)
    assert set(known.values_list("first_name", "country", "postcode").distinct()) == {
        ("Анна", "FR", "10115")
    }
    # A formula is just text in the database (exports escape it).
    if plan.formula_email:
        assert Supporter.objects.get(email=plan.formula_email).first_name == "=1+2"
    # Tags on everyone imported, new or known; consent only for whom it applies: subscribed.
    for name in ("imported", "autumn-2025"):
        assert Tag.objects.get(name=name).supporters.count() == plan.created + len(before)
    subscribed_known = plan.existing_by_status["subscribed"]
    assert ConsentRecord.objects.count() == plan.created + subscribed_known
    assert set(ConsentRecord.objects.values_list("wording", "source_url")) == {
        ("Email me", "Paper petition, Berlin march")
    }
    # The report: one row per rejected line, with its reason; the erased keep no cells.
    rejections = {
        rejection.line: rejection
        for rejection in SupporterImportRejection.objects.filter(
            supporter_import_id=result["import_id"]
        )
    }
    assert set(rejections) == set(plan.rejected_lines)
    for line, reason in plan.rejected_lines.items():
        assert reason in rejections[line].reason
        if reason == "erased on request":
            assert rejections[line].raw == ""
    assert SupporterAuditEntry.objects.get(action="import").row_count == plan.rows
    supporter_import = SupporterImport.objects.get()
    assert supporter_import.status == "done" and supporter_import.rejected == plan.rejected


@pytest.mark.django_db(transaction=True)
def test_importing_the_same_file_twice_creates_nobody_the_second_time(tmp_path):
    path = tmp_path / "list.csv"
    plan = fault_file_write(path, rows=2_000, encoding="utf-8", delimiter=",", newline="\n")
    first = import_command(path)
    statuses = dict(Supporter.objects.values_list("email", "status"))

    second = import_command(path)

    assert first["created"] == plan.created
    assert (second["created"], second["merged"], second["rejected"]) == (
        0, plan.created + plan.merged, plan.rejected,
    )  # fmt: skip
    assert dict(Supporter.objects.values_list("email", "status")) == statuses
