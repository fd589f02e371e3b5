"""Preview a mailing as a real supporter; send [TEST] copies through the transactional queue."""

import html
import re

import pytest
from django.core import mail

from campaigns.links import read_petition_token
from mailings.models import Delivery, MailingAuditEntry, OutboxMessage
from tests.admin_users import staff_client
from tests.factories import MailingFactory, SupporterFactory
from tests.processes import wait_for

pytestmark = pytest.mark.django_db


# Previewing or test-sending as a real supporter shows their name, address and personal
# links: it takes a permission of its own and the right to see supporters.
AS_SUPPORTER = ("preview_as_supporter", "supporters.view_supporter")


@pytest.fixture
def campaigner(client):
    return staff_client(
        client, "view_mailing", "change_mailing", "test_send_mailing", *AS_SUPPORTER
    )


def preview(client, mailing, **params):
    return client.get(f"/admin/mailings/mailing/{mailing.pk}/preview/", params)


def test_the_preview_shows_subject_html_and_text_with_the_supporters_own_links(campaigner):
    mailing = MailingFactory(preheader="Read this first")
    olga = SupporterFactory(first_name="Olga", email="olga@example.org")
    response = preview(campaigner, mailing, supporter=olga.pk)
    page = response.content.decode()
    assert response.status_code == 200
    assert '<td class="preview-subject">Olga, sign now</td>' in page
    assert "Read this first" in page
    assert "<iframe sandbox" in page
    srcdoc = html.unescape(re.search(r'srcdoc="([^"]*)"', page).group(1))
    assert "Dear Olga," in srcdoc
    token = re.search(r"\?t=([^\"&<\s]+)", srcdoc).group(1)
    assert read_petition_token(token).supporter_id == olga.pk
    assert "Dear Olga," in re.search(r'<pre class="preview-text"[^>]*>(.*?)</pre>', page, re.S)[1]


def test_the_preview_finds_a_supporter_by_email_or_takes_one_from_the_audience(campaigner):
    mailing = MailingFactory()
    only = SupporterFactory(email="only@example.org", first_name="Only")
    assert "only@example.org" in preview(campaigner, mailing).content.decode()
    by_email = preview(campaigner, mailing, email="ONLY@example.org").content.decode()
    assert "<strong>only@example.org</strong>" in by_email
    missing = preview(campaigner, mailing, email="nobody@example.org")
    assert missing.status_code == 400 and "No supporter has the address" in missing.content.decode()
    only.status = "unsubscribed"
    only.save()
    empty = preview(campaigner, mailing)
    assert empty.status_code == 400
    assert "Nobody is in this mailing&#x27;s audience yet" in empty.content.decode()


def test_an_unknown_language_is_said_and_the_preview_still_shown(campaigner):
    mailing = MailingFactory()
    supporter = SupporterFactory()
    page = preview(campaigner, mailing, supporter=supporter.pk, language="xx").content.decode()
    assert "There is no “xx” version" in page
    assert "preview-subject" in page


def test_the_preview_needs_the_right_to_see_mailings(client):
    mailing = MailingFactory()
    staff_client(client, "view_delivery")
    assert preview(client, mailing).status_code == 403


def post_test_send(client, mailing, **data):
    return client.post(f"/admin/mailings/mailing/{mailing.pk}/test-send/", data, follow=True)


def test_test_copies_go_to_each_address_marked_and_never_into_the_ledger(
    campaigner, django_capture_on_commit_callbacks, settings
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    mailing = MailingFactory()
    olga = SupporterFactory(first_name="Olga")
    with django_capture_on_commit_callbacks(execute=True):
        response = post_test_send(
            campaigner, mailing, supporter=olga.pk, addresses="me@example.org,\n You@Example.org"
        )
    assert "is on its way to me@example.org, you@example.org" in response.content.decode()
    assert sorted(message.to[0] for message in mail.outbox) == [
        "me@example.org",
        "you@example.org",
    ]
    for message in mail.outbox:
        assert message.subject == "[TEST] Olga, sign now"
        assert "List-Unsubscribe" not in message.extra_headers
    assert not Delivery.objects.exists()
    entry = MailingAuditEntry.objects.get(action=MailingAuditEntry.Action.TEST_SENT)
    assert entry.actor_name == "staff" and "me@example.org" in entry.detail


@pytest.mark.parametrize(
    ("addresses", "reason"),
    [
        ("me@example.org, not-an-address", "“not-an-address” is not an email address"),
        (",".join(f"tester{n}@example.org" for n in range(11)), "at most 10 addresses"),
        ("  ", "Give at least one address"),
    ],
    ids=["malformed", "eleven", "none"],
)
def test_a_refused_test_send_sends_and_records_nothing(
    campaigner, django_capture_on_commit_callbacks, addresses, reason
):
    mailing = MailingFactory()
    supporter = SupporterFactory()
    with django_capture_on_commit_callbacks() as callbacks:
        response = post_test_send(campaigner, mailing, supporter=supporter.pk, addresses=addresses)
    assert reason in response.content.decode()
    assert callbacks == [] and not MailingAuditEntry.objects.exists()


def test_without_the_test_send_permission_a_post_is_refused(
    client, django_capture_on_commit_callbacks
):
    mailing = MailingFactory()
    supporter = SupporterFactory()
    staff_client(client, "view_mailing", "change_mailing")
    assert "Send a test copy" not in preview(client, mailing).content.decode()
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            f"/admin/mailings/mailing/{mailing.pk}/test-send/",
            {"supporter": supporter.pk, "addresses": "me@example.org"},
        )
    assert response.status_code == 403
    assert callbacks == [] and not MailingAuditEntry.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_worker_on_the_transactional_queue_delivers_the_test_copy(client, celery_worker_factory):
    mailing = MailingFactory()
    supporter = SupporterFactory(first_name="Ivan", language="ru")
    staff_client(client, "view_mailing", "test_send_mailing", *AS_SUPPORTER)
    celery_worker_factory(EMAIL_BACKEND="mailings.sending.esp.outbox.EmailBackend")
    post_test_send(client, mailing, supporter=supporter.pk, addresses="desk@example.org")
    copy = wait_for(
        lambda: OutboxMessage.objects.filter(to="desk@example.org").first(),
        timeout=30,
        message="no test copy reached the outbox",
    )
    assert copy.subject == "[TEST] Ivan, sign now"
    assert not Delivery.objects.exists()


def test_a_campaigners_markup_never_runs_in_the_admin_page(campaigner):
    mailing = MailingFactory(
        text_body="Hi </pre><script>alert(1)</script>",
        html_body='<p>Hi</p>"><script>alert(2)</script>',
    )
    page = preview(campaigner, mailing, supporter=SupporterFactory().pk).content.decode()
    assert "<script>alert(1)" not in page and "<script>alert(2)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    test_send_page = campaigner.get(f"/admin/mailings/mailing/{mailing.pk}/test-send/")
    assert test_send_page.status_code == 405


def _olga_in_the_audience():
    return SupporterFactory(
        first_name="Olga", last_name="Petrova", email="olga.petrova@example.org"
    )


def _shows_nothing_of(page: str, supporter) -> bool:
    # Her name, her address, or a personal link (a petition token, an unsubscribe token).
    return not re.search(
        rf"Olga|Petrova|{re.escape(supporter.email)}|\?t=|/unsubscribe/[^/\s\"]{{20,}}",
        html.unescape(page),
    )


@pytest.mark.parametrize(
    "permissions",
    [
        pytest.param(("view_mailing",), id="viewer"),
        pytest.param(("view_mailing", "change_mailing", "test_send_mailing"), id="editor"),
        pytest.param(("view_mailing", "preview_as_supporter"), id="without-view-supporter"),
        pytest.param(("view_mailing", "supporters.view_supporter"), id="without-preview-as"),
    ],
)
def test_without_the_right_to_preview_as_a_supporter_the_preview_is_of_a_sample_person(
    client, permissions
):
    mailing = MailingFactory()
    olga = _olga_in_the_audience()
    staff_client(client, *permissions)

    sample = preview(client, mailing)
    assert sample.status_code == 200
    page = sample.content.decode()
    assert "a made-up sample supporter" in page
    assert "preview-subject" in page and "Dear Alex," in html.unescape(page)
    assert _shows_nothing_of(page, olga)
    # Asking for her by id or by address is refused, and shows nothing of her either.
    for chosen in ({"supporter": olga.pk}, {"email": olga.email}):
        refused = preview(client, mailing, **chosen)
        assert refused.status_code == 403
        assert _shows_nothing_of(refused.content.decode(), olga)


def test_with_the_right_to_preview_as_a_supporter_the_preview_is_of_a_real_one(client):
    mailing = MailingFactory()
    olga = _olga_in_the_audience()
    staff_client(client, "view_mailing", *AS_SUPPORTER)
    page = html.unescape(preview(client, mailing, supporter=olga.pk).content.decode())
    assert "Dear Olga," in page and olga.email in page


def test_a_test_copy_as_a_real_supporter_needs_the_right_to_preview_as_one(
    client, django_capture_on_commit_callbacks, settings
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    mailing = MailingFactory()
    olga = _olga_in_the_audience()
    staff_client(client, "view_mailing", "test_send_mailing")

    with django_capture_on_commit_callbacks(execute=True):
        refused = client.post(
            f"/admin/mailings/mailing/{mailing.pk}/test-send/",
            {"supporter": olga.pk, "addresses": "me@example.org"},
        )
    assert refused.status_code == 403
    assert mail.outbox == [] and not MailingAuditEntry.objects.exists()

    # As the sample person, the test copy goes.
    with django_capture_on_commit_callbacks(execute=True):
        post_test_send(client, mailing, supporter="", addresses="me@example.org")
    (copy,) = mail.outbox
    assert copy.to == ["me@example.org"] and copy.subject == "[TEST] Alex, sign now"
    assert _shows_nothing_of(copy.body + copy.alternatives[0][0], olga)
    assert "sample" in MailingAuditEntry.objects.get().detail
