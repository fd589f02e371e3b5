"""The merge's rules on a small file, checked field by field (on both databases)."""

import io
import json
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from supporters.models import (
    ConsentRecord,
    Supporter,
    SupporterImport,
    SupporterImportRejection,
    Tag,
)
from tests.factories import SupporterFactory

CONSENT = ["--consent-source", "Book fair", "--consent-wording", "Email me"]


def run(tmp_path, text: str, *tags: str) -> dict:
    path = tmp_path / "list.csv"
    path.write_text(text, encoding="utf-8")
    stdout = io.StringIO()
    tag_args = [argument for tag in tags or ("fair",) for argument in ("--tag", tag)]
    call_command("supporters_import", str(path), *tag_args, *CONSENT, stdout=stdout,
                 stderr=io.StringIO())  # fmt: skip
    return json.loads(stdout.getvalue().strip().splitlines()[-1])


@pytest.mark.django_db(transaction=True)
def test_rows_of_one_address_are_one_person_filled_from_the_first_non_empty_values(tmp_path):
    result = run(
        tmp_path,
        "Email,First name,Last name,Country,Postcode,Language\n"
        "Ann@Example.org,,Lee,,,\n"
        "ann@example.org,Ann,Other,Germany,10115,ru\n"
        " ANN@EXAMPLE.ORG ,Anna,,FR,,en\n",
    )
    assert (result["rows"], result["created"], result["merged"]) == (3, 1, 2)
    ann = Supporter.objects.get()
    assert (ann.email, ann.first_name, ann.last_name, ann.country, ann.postcode, ann.language) == (
        "ann@example.org", "Ann", "Lee", "DE", "10115", "ru",
    )  # fmt: skip
    assert ConsentRecord.objects.get().supporter == ann


@pytest.mark.django_db(transaction=True)
def test_each_new_supporter_gets_a_random_public_uuid_of_their_own(tmp_path):
    """The batch's uuids are handed out sorted (merge.py): still random, still distinct."""
    known = SupporterFactory(email="known@example.org")
    rows = "".join(f"person{i}@example.org,P{i}\n" for i in range(300))
    result = run(tmp_path, f"Email,First name\nknown@example.org,K\n{rows}")
    assert result["created"] == 300
    created = Supporter.objects.exclude(pk=known.pk)
    uuids = [supporter.uuid for supporter in created]
    assert len(set(uuids)) == 300 and known.uuid not in uuids
    if connection.vendor == "postgresql":  # gen_random_uuid(); SQLite's default is 16 bytes
        assert {value.version for value in uuids} == {4}


@pytest.mark.django_db(transaction=True)
def test_known_supporters_keep_their_status_and_details_and_only_the_subscribed_get_consent(
    tmp_path,
):
    statuses = ["subscribed", "unsubscribed", "bounced", "complained"]
    known = {
        status: SupporterFactory(
            email=f"{status}@example.org", status=status, first_name="", last_name="Kept"
        )
        for status in statuses
    }
    erased = SupporterFactory(email="erased@example.org", status="erased", first_name="")
    rows = "".join(f"{status}@example.org,Filled,Other\n" for status in [*statuses, "erased"])

    result = run(tmp_path, "Email,First name,Last name\n" + rows, "fair", "Autumn")

    assert (result["created"], result["merged"], result["rejected"]) == (0, 4, 1)
    assert result["existing_not_subscribed"] == 3
    for status, supporter in known.items():
        supporter.refresh_from_db()
        assert (supporter.status, supporter.first_name, supporter.last_name) == (
            status, "Filled", "Kept",
        )  # fmt: skip
        assert set(supporter.tags.values_list("name", flat=True)) == {"fair", "Autumn"}
    assert list(ConsentRecord.objects.values_list("supporter__email", flat=True)) == [
        "subscribed@example.org"
    ]
    erased.refresh_from_db()
    assert (erased.status, erased.first_name, erased.tags.count()) == ("erased", "", 0)
    rejection = SupporterImportRejection.objects.get()
    assert (rejection.line, rejection.reason, rejection.raw) == (6, "erased on request", "")


@pytest.mark.django_db(transaction=True)
def test_an_import_that_fails_while_merging_writes_nothing_and_says_so(tmp_path):
    SupporterFactory(email="known@example.org", first_name="")
    with (
        mock.patch(
            "supporters.imports.services.SupporterAuditEntry.objects.create",
            side_effect=RuntimeError("disk full"),
        ),
        pytest.raises(RuntimeError),
    ):
        run(tmp_path, "Email,Name\nnew@example.org,New\nknown@example.org,Known\nbad,Row\n")

    assert list(Supporter.objects.values_list("email", "first_name")) == [("known@example.org", "")]
    # The tags are made before the merge (every lane's session must see them), and stay empty.
    assert not ConsentRecord.objects.exists()
    assert list(Tag.objects.values_list("name", "supporters")) == [("fair", None)]
    assert not SupporterImportRejection.objects.exists()
    supporter_import = SupporterImport.objects.get()
    assert supporter_import.status == "failed" and "nothing was imported" in supporter_import.error


@pytest.mark.django_db(transaction=True)
def test_a_file_without_an_email_column_fails_before_anything_is_written(tmp_path):
    with pytest.raises(CommandError, match="No column holds the email address"):
        run(tmp_path, "Name,Phone\nAnn,123\n")
    assert not Supporter.objects.exists() and not SupporterImport.objects.exists()
