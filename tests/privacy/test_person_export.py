"""One supporter's data as JSON (GDPR art. 15 and 20): everything held, nobody else's."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from privacy.services import supporter_data_export
from supporters.models import SupporterAuditEntry
from tests.privacy.conftest import EMAIL, POSTCODE

pytestmark = pytest.mark.django_db


def test_person_export_holds_profile_tags_consents_signatures_deliveries_events_and_clicks(
    zelda,
):
    data = supporter_data_export(supporter_id=zelda.pk)
    json.dumps(data)  # serialisable as it is

    assert data["profile"]["email"] == EMAIL
    assert data["profile"]["first_name"] == "Zelda"
    assert data["profile"]["postcode"] == POSTCODE
    assert data["profile"]["country"] == "NZ"
    assert data["tags"] == ["donors", "volunteers"]
    assert [c["wording"] for c in data["consents"]] == ["Keep me informed."]
    assert data["consents"][0]["ip_truncated"] == "203.0.113.0"

    credited = [s for s in data["signatures"] if s["mailing_credited"]]
    assert len(data["signatures"]) == 2
    assert credited[0]["mailing_credited"] == "Spring appeal"
    assert credited[0]["signed_at"] and credited[0]["confirmed_at"]

    deliveries = {d["mailing"]: d for d in data["deliveries"]}
    assert set(deliveries) == {"Spring appeal", "Follow-up"}
    spring = deliveries["Spring appeal"]
    assert spring["status"] == "sent" and spring["esp_status"] == "delivered"
    assert spring["sent_at"] and spring["opened_at"] and spring["clicked_at"]
    assert deliveries["Follow-up"]["esp_status"] == "bounced"

    # Events of her deliveries, and one naming her address with no delivery; not the
    # bystander's.
    events = sorted(
        (e["type"], e["mailing"] or "", e["description"]) for e in data["tracking_events"]
    )
    assert events == [
        ("bounced", "Follow-up", f"The address {EMAIL} does not exist"),
        ("delivered", "Spring appeal", "Delivered to mx.example.org"),
        ("opened", "", ""),
    ]
    assert all(e["occurred_at"] for e in data["tracking_events"])
    assert sorted(c["url"] for c in data["clicks"]) == [
        "https://partner.example/join?email=zelda.quartermaine%40example.org",
        "https://rally.example/petitions/x/",
    ]
    assert all(c["mailing"] == "Spring appeal" and c["clicked_at"] for c in data["clicks"])
    assert "bystander" not in json.dumps(data)


def test_person_export_is_in_the_audit_log_without_the_email(zelda):
    supporter_data_export(supporter_id=zelda.pk)
    entry = SupporterAuditEntry.objects.get()
    assert entry.action == SupporterAuditEntry.Action.EXPORTED_PERSON
    assert str(zelda.pk) in entry.detail and "@" not in entry.detail


def test_data_export_command_prints_the_json_for_the_address_in_any_case(zelda, capsys):
    call_command("supporter_data_export", "  Zelda.Quartermaine@EXAMPLE.org ")
    data = json.loads(capsys.readouterr().out)
    assert data["profile"]["email"] == EMAIL
    assert len(data["deliveries"]) == 2


def test_data_export_command_keeps_non_latin_text_readable(zelda, capsys):
    zelda.first_name = "Зельда"
    zelda.save(update_fields=["first_name"])
    call_command("supporter_data_export", EMAIL)
    assert '"first_name": "Зельда"' in capsys.readouterr().out


def test_data_export_command_refuses_an_unknown_address_and_prints_no_json(zelda, capsys):
    with pytest.raises(CommandError, match="No supporter has that address"):
        call_command("supporter_data_export", "nobody@example.org")
    assert capsys.readouterr().out == ""
    assert not SupporterAuditEntry.objects.exists()
