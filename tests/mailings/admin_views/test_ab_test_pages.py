"""A/B tests in the admin: set up on the mailing's form, refused with a clear message when
they cannot work, and decided or stopped from the progress page by the send permission alone.
"""

import pytest
from django.core import mail

from mailings.models import Mailing, MailingVariant
from mailings.sending import delivery_snapshot, mailing_send, mailing_send_batch
from tests.admin_users import staff_client
from tests.factories import MAILING_FORM_NO_VERSIONS, MailingFactory, SupporterFactory

pytestmark = pytest.mark.django_db

EDIT = ("change_mailing", "view_mailing", "add_mailingvariant", "change_mailingvariant")


def form_data(mailing, *, variants=(), **changes):
    data = {
        "campaign": mailing.campaign_id, "petition": mailing.petition_id or "",
        "name": mailing.name, "subject": mailing.subject, "preheader": mailing.preheader,
        "sender": f"{mailing.from_name} <{mailing.from_email}>", "html_body": mailing.html_body,
        "text_body": mailing.text_body, "audience_language": "", "audience_country": "",
        "ab_wait_hours": "4", "ab_metric": "signatures", "ab_confidence": "0.95",
        "ab_min_deliveries": "100", "ab_without_winner": "send_a", "ab_test_share": "",
        **MAILING_FORM_NO_VERSIONS,
    }  # fmt: skip
    data["variants-TOTAL_FORMS"] = str(len(variants))
    for number, variant in enumerate(variants):
        for field in ("label", "language", "subject", "preheader", "from_name"):
            data[f"variants-{number}-{field}"] = variant.get(field, "")
    return {**data, **changes}


def post(client, mailing, **kwargs):
    return client.post(
        f"/admin/mailings/mailing/{mailing.pk}/change/", form_data(mailing, **kwargs)
    )


def errors(response) -> str:
    assert response.status_code == 200, "the form was saved"
    return response.content.decode()


@pytest.fixture
def editor(client):
    return staff_client(client, *EDIT)


def test_a_test_with_two_subjects_is_saved(editor):
    mailing = MailingFactory()
    response = post(
        editor, mailing, ab_test_share="20", variants=[{"label": "B", "subject": "Other subject"}]
    )
    assert response.status_code == 302
    mailing.refresh_from_db()
    assert mailing.ab_test_share == 20
    assert list(mailing.variants.values_list("label", "subject")) == [("B", "Other subject")]


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"ab_test_share": "5"}, "A test goes to 10 to 50 percent of the audience."),
        ({"ab_test_share": "80"}, "A test goes to 10 to 50 percent of the audience."),
        ({"ab_wait_hours": "0"}, "a wait must end in the future"),
        ({"ab_wait_hours": "-3"}, "Ensure this value is greater than or equal to 0"),
        ({"ab_wait_hours": "49"}, "within two days"),
    ],
)
def test_a_share_or_wait_out_of_range_is_refused_and_nothing_changes(editor, changes, said):
    mailing = MailingFactory()
    page = errors(
        post(
            editor,
            mailing,
            variants=[{"label": "B", "subject": "Other"}],
            **{"ab_test_share": "20", **changes},
        )
    )
    assert said in page
    mailing.refresh_from_db()
    assert mailing.ab_test_share is None and not MailingVariant.objects.exists()


def test_a_test_with_one_variant_is_refused(editor):
    mailing = MailingFactory()
    page = errors(post(editor, mailing, ab_test_share="20"))
    assert "An A/B test needs at least two variants" in page
    mailing.refresh_from_db()
    assert mailing.ab_test_share is None


def test_variants_without_a_test_share_are_refused(editor):
    mailing = MailingFactory()
    page = errors(post(editor, mailing, variants=[{"label": "B", "subject": "Other"}]))
    assert "Variants are sent only in an A/B test" in page
    assert not MailingVariant.objects.exists()


@pytest.mark.parametrize(
    ("variants", "said"),
    [
        ([{"label": "B"}], "Variant B is the same as A"),
        ([{"label": "B", "from_name": "Rally campaigns"}], "Variant B is the same as A"),
        (
            [{"label": "B", "subject": "Same"}, {"label": "C", "subject": "Same"}],
            "Variants B and C are the same",
        ),
        ([{"label": "B", "language": "ru", "subject": "Тема"}], "which has no language version"),
        ([{"label": "B", "subject": "{{ supporter.delete }}"}], "supporter"),
    ],
)
def test_variants_that_change_nothing_or_cannot_be_sent_are_refused(editor, variants, said):
    mailing = MailingFactory(subject="Subject A")
    page = errors(post(editor, mailing, ab_test_share="20", variants=variants))
    assert said in page
    assert not MailingVariant.objects.exists()


def test_a_sending_mailings_test_cannot_be_changed(editor):
    mailing = MailingFactory(subject="Subject A", ab_test_share=20)
    MailingVariant.objects.create(mailing=mailing, label="B", subject="Subject B")
    SupporterFactory()
    mailing_send(mailing=mailing)
    post(editor, mailing, ab_test_share="50")
    mailing.refresh_from_db()
    assert mailing.ab_test_share == 20
    page = editor.get(f"/admin/mailings/mailing/{mailing.pk}/change/").content.decode()
    assert 'name="ab_test_share"' not in page and 'name="variants-0-subject"' not in page


@pytest.fixture
def waiting(client):
    for number in range(40):
        SupporterFactory(email=f"r{number}@example.org")
    mailing = MailingFactory(subject="Subject A", ab_test_share=50, ab_min_deliveries=1)
    MailingVariant.objects.create(mailing=mailing, label="B", subject="Subject B")
    mailing_send(mailing=mailing)
    delivery_snapshot(mailing_id=mailing.pk)
    while mailing_send_batch(mailing_id=mailing.pk, worker="test").more:
        pass
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.WAITING_FOR_WINNER
    return mailing


def test_the_progress_page_shows_the_variants_and_lets_a_sender_pick(client, waiting):
    sender = staff_client(client, "view_mailing", "send_mailing", username="sender")
    page = sender.get(f"/admin/mailings/mailing/{waiting.pk}/progress/").content.decode()
    assert "Subject B" in page and "Send B to the rest now" in page

    response = sender.post(
        f"/admin/mailings/mailing/{waiting.pk}/ab-test/", {"action": "pick", "winner": "B"}
    )
    assert response.status_code == 302
    waiting.refresh_from_db()
    assert (waiting.ab_winner, waiting.status) == ("B", Mailing.Status.SENDING)

    again = sender.post(
        f"/admin/mailings/mailing/{waiting.pk}/ab-test/",
        {"action": "pick", "winner": "A"},
        follow=True,
    )
    assert "decided already: B went to the rest" in again.content.decode()
    waiting.refresh_from_db()
    assert waiting.ab_winner == "B"


def test_without_the_send_permission_nobody_picks_or_stops(client, waiting):
    viewer = staff_client(client, "view_mailing", "control_mailing", username="viewer")
    page = viewer.get(f"/admin/mailings/mailing/{waiting.pk}/progress/").content.decode()
    assert "Send B to the rest now" not in page and "Stop the test" not in page
    for action in ({"action": "pick", "winner": "B"}, {"action": "stop"}):
        response = viewer.post(f"/admin/mailings/mailing/{waiting.pk}/ab-test/", action)
        assert response.status_code == 403
    waiting.refresh_from_db()
    assert (waiting.ab_winner, waiting.status) == ("", Mailing.Status.WAITING_FOR_WINNER)


def test_stopping_from_the_progress_page_sends_the_rest_nothing(client, waiting):
    sender = staff_client(client, "view_mailing", "send_mailing", username="sender")
    sent = len(mail.outbox)
    sender.post(f"/admin/mailings/mailing/{waiting.pk}/ab-test/", {"action": "stop"})
    waiting.refresh_from_db()
    assert (waiting.status, waiting.ab_status) == (
        Mailing.Status.CANCELLED,
        Mailing.ABStatus.STOPPED,
    )
    assert len(mail.outbox) == sent
    bad = sender.post(f"/admin/mailings/mailing/{waiting.pk}/ab-test/", {"action": "launch"})
    assert bad.status_code == 400


def test_the_send_page_says_the_confirmation_covers_the_test_and_the_rest(client):
    for number in range(3):
        SupporterFactory(email=f"r{number}@example.org")
    mailing = MailingFactory(subject="Subject A", ab_test_share=20, ab_wait_hours=6)
    MailingVariant.objects.create(mailing=mailing, label="B", subject="Subject B")
    MailingVariant.objects.create(mailing=mailing, label="B", language="ru", subject="Тема B")
    sender = staff_client(client, "view_mailing", "send_mailing", username="sender")
    page = sender.get(f"/admin/mailings/mailing/{mailing.pk}/send/").content.decode()
    assert "2 variants (A, B) go to 20% of these supporters first; 6 hours after" in page
    assert "This confirmation covers all of them." in page


def test_the_preview_shows_each_variant_as_its_readers_get_it(admin_client):
    supporter = SupporterFactory(email="olga@example.org", first_name="Olga")
    mailing = MailingFactory(subject="Subject A", preheader="Preheader A", ab_test_share=20)
    MailingVariant.objects.create(
        mailing=mailing, label="B", subject="{{ first_name }}, B", preheader="Preheader B",
        from_name="Hilary at Rally",
    )  # fmt: skip
    url = f"/admin/mailings/mailing/{mailing.pk}/preview/?supporter={supporter.pk}"
    page_a = admin_client.get(url).content.decode()
    assert "Subject A" in page_a and "Preheader A" in page_a
    page_b = admin_client.get(url + "&variant=B").content.decode()
    assert "Olga, B" in page_b and "Preheader B" in page_b
    assert "Hilary at Rally &lt;campaigns@rally.example&gt;" in page_b
    unknown = admin_client.get(url + "&variant=Z").content.decode()
    assert "There is no variant “Z”" in unknown and "Subject A" in unknown
