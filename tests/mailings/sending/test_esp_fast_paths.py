"""The fast paths to the ESP produce what the standard paths would."""

import email
import email.policy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailings.content.rendering import CompiledMailing, build_message, merge_fields
from mailings.sending.esp.smtp import mime_bytes
from tests.factories import MailingFactory

pytestmark = pytest.mark.django_db


def appeal(**supporter):
    compiled = CompiledMailing(MailingFactory(subject="Привет, {{ first_name }}: sign now"))
    fields = merge_fields(
        compiled=compiled,
        supporter_id=7,
        email=supporter.get("email", "ann@example.org"),
        first_name=supporter.get("first_name", "Анна"),
        last_name="Lee",
        country="GB",
    )
    return build_message(compiled=compiled, fields=fields, delivery_id=1)


@pytest.mark.parametrize("eight_bit", [False, True])
def test_lean_mime_parses_to_the_same_message_django_would_send(eight_bit):
    message = appeal()
    raw = mime_bytes(message, "<id@example.org>", eight_bit=eight_bit)
    encoding = b"8bit" if eight_bit else b"quoted-printable"
    assert raw.count(b"Content-Transfer-Encoding: " + encoding) == 2
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    ours = email.message_from_bytes(raw, policy=email.policy.default)
    django = email.message_from_bytes(message.message().as_bytes(), policy=email.policy.default)
    for header in ("From", "To", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post"):
        assert str(ours[header]).strip() == str(django[header]).strip(), header
    assert str(ours["Subject"]) == "Привет, Анна: sign now"
    assert ours["Message-ID"] == "<id@example.org>"
    for kind in ("plain", "html"):
        # MIME's canonical line end is CRLF; Django's bytes use LF until smtplib sends them.
        our_text = ours.get_body((kind,)).get_content().replace("\r\n", "\n")
        assert our_text == django.get_body((kind,)).get_content(), kind


def test_a_body_with_a_line_over_998_bytes_goes_quoted_printable_as_django_sends_it():
    """RFC 5322's line limit: Django's SafeMIMEText switches such a body to quoted-printable."""
    long_line = "Свобода " * 70  # 1,050 bytes of UTF-8 in one line
    message = appeal()
    message.body = f"Dear Анна,\n{long_line}\nThank you."
    raw = mime_bytes(message, "<id@example.org>", eight_bit=True)

    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert b"Content-Transfer-Encoding: quoted-printable" in raw  # the text
    assert b"Content-Transfer-Encoding: 8bit" in raw  # the HTML, whose lines are short
    ours = email.message_from_bytes(raw, policy=email.policy.default)
    django = email.message_from_bytes(message.message().as_bytes(), policy=email.policy.default)
    for kind in ("plain", "html"):
        our_text = ours.get_body((kind,)).get_content().replace("\r\n", "\n")
        assert our_text == django.get_body((kind,)).get_content(), kind


@pytest.mark.parametrize("server_takes_8bit", [False, True])
def test_the_envelope_announces_8bit_only_when_a_body_goes_so(server_takes_8bit):
    from mailings.sending.esp.smtp import _transaction

    transaction = _transaction(appeal(), eight_bit=server_takes_8bit)

    mail_from = transaction.envelope.split(b"\r\n")[0]
    assert mail_from.endswith(b" BODY=8BITMIME") is server_takes_8bit
    assert (b"Content-Transfer-Encoding: 8bit" in transaction.content) is server_takes_8bit


def test_a_sink_that_takes_8bit_receives_each_body_as_written(settings):
    """The sink advertises 8BITMIME: the bodies arrive 8bit, and read back as they were."""
    from django.core.mail import get_connection

    from espfakes import FakeSMTP
    from mailings.sending.esp import batch_sender_for

    messages = numbered_appeals(3) + [appeal(first_name="Анна", email="anna@example.org")]
    # A line that starts with a dot is doubled on the wire (RFC 5321 4.5.2) and read back single.
    messages[0].body = "Dear Reader0,\n.one dot\n..two dots\n.\nThe end."
    with FakeSMTP() as sink:
        for name, value in sink.django_settings().items():
            setattr(settings, name, value)
        connection = get_connection()
        connection.open()
        try:
            results = batch_sender_for(connection).send(messages)
            assert connection.connection.has_extn("8bitmime")
        finally:
            connection.close()
        received = {entry["recipient"]: entry for entry in sink.messages(limit=10)}

    assert all(result.failure is None for result in results)
    for message in messages:
        entry = received[message.to[0]]
        html = next(content for content, kind in message.alternatives if kind == "text/html")
        assert entry["text"].replace("\r\n", "\n") == message.body
        assert entry["html"].replace("\r\n", "\n") == html


def test_no_header_can_be_split_by_a_merge_value():
    message = appeal(first_name="Ann\r\nBcc: victim@example.org")
    parsed = email.message_from_bytes(mime_bytes(message, "<id@example.org>"))
    assert parsed["Bcc"] is None


# The pipelined SMTP path, against a real SMTP sink in its own process ------------------------


@pytest.fixture
def smtp_sender(settings):
    """Yield (sink, sender) with the sender's connection open to the sink."""
    from django.core.mail import get_connection

    from espfakes import FakeSMTP
    from mailings.sending.esp import batch_sender_for
    from mailings.sending.esp.smtp import SMTPSender

    with FakeSMTP(record_bodies=False, reject_recipients=["refused3@example.org"]) as sink:
        for name, value in sink.django_settings().items():
            setattr(settings, name, value)
        connection = get_connection()
        connection.open()
        sender = batch_sender_for(connection)
        assert isinstance(sender, SMTPSender)
        yield sink, sender
        connection.close()


def numbered_appeals(count: int, prefix: str = "reader"):
    compiled = CompiledMailing(MailingFactory())
    messages = []
    for n in range(count):
        fields = merge_fields(
            compiled=compiled,
            supporter_id=n,
            email=f"{prefix}{n}@example.org",
            first_name=f"Reader{n}",
            last_name="Lee",
            country="GB",
        )
        messages.append(build_message(compiled=compiled, fields=fields, delivery_id=n))
    return messages


def accepted_recipients(sink) -> list[str]:
    return [entry["recipient"] for entry in sink.messages(limit=10_000)]


def test_pipelined_smtp_reports_each_message_on_its_own(smtp_sender):
    sink, sender = smtp_sender
    messages = numbered_appeals(8, prefix="refused") + numbered_appeals(4, prefix="fine")

    results = sender.send(messages)

    refused = results[3].failure
    assert (
        refused.permanent and "550" in refused.reason and "refused3@example.org" in refused.reason
    )
    assert all(
        result.failure is None and result.message_id for i, result in enumerate(results) if i != 3
    )
    assert sorted(accepted_recipients(sink)) == sorted(
        message.to[0] for i, message in enumerate(messages) if i != 3
    )


@pytest.mark.parametrize("stage", ["mail", "rcpt", "data"])
@pytest.mark.parametrize("code", [421, 451])
def test_a_transient_refusal_mid_group_sends_nothing_twice_and_hands_back_the_rest(
    smtp_sender, code, stage
):
    sink, sender = smtp_sender
    messages = numbered_appeals(10)
    sink.fail_next(1, code="accept")  # the failure lands in the middle of the group
    sink.fail_next(1, code=code, stage=stage)

    results = sender.send(messages)

    refused_now = [i for i, result in enumerate(results) if result.failure]
    assert refused_now and all(not results[i].failure.permanent for i in refused_now)
    if code == 421:  # the server hung up: everything after it waits for a new connection
        assert refused_now == list(range(1, 10))
    else:
        assert refused_now == [1]
    assert not any(results[i].failure.outcome_unknown for i in refused_now)
    sent = [
        message.to[0]
        for message, result in zip(messages, results, strict=True)
        if not result.failure
    ]
    assert sorted(accepted_recipients(sink)) == sorted(sent)
    # The rest go out on a new send (a new connection after a 421), exactly once each.
    retry = sender.send([messages[i] for i in refused_now])
    assert all(result.failure is None for result in retry)
    accepted = accepted_recipients(sink)
    assert sorted(accepted) == sorted(message.to[0] for message in messages)


def test_a_transient_refusal_of_the_first_message_raises_so_the_group_is_retried(smtp_sender):
    import smtplib

    sink, sender = smtp_sender
    sink.fail_next(1, code=451, stage="rcpt")
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        sender.send(numbered_appeals(5))
    assert accepted_recipients(sink) == []


@pytest.mark.parametrize("position", [0, 4])
def test_a_reply_lost_after_the_message_was_written_is_unknown(smtp_sender, position):
    sink, sender = smtp_sender
    messages = numbered_appeals(10)
    sink.fail_next(position, code="accept")
    sink.fail_next(1, code="drop_after_accept")

    results = sender.send(messages)

    lost = results[position].failure
    assert lost.outcome_unknown and not lost.permanent
    # Nothing after it was written; it goes back to the queue.
    assert all(r.failure and not r.failure.outcome_unknown for r in results[position + 1 :])
    assert sorted(accepted_recipients(sink)) == sorted(m.to[0] for m in messages[: position + 1])


# Postmark's batch JSON, made from the first message of each shape ---------------------------


def postmark_backend(settings, **send_defaults):
    from django.core.mail import get_connection

    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "test-token", "SEND_DEFAULTS": send_defaults}
    return get_connection("anymail.backends.postmark.EmailBackend")


def varied_appeals():
    """Messages of one mailing in its versions and variants, to all kinds of addresses."""
    from mailings.models import MailingVariant, MailingVersion

    mailing = MailingFactory(subject="{{ first_name|default:'Friend' }}, sign", reply_to="")
    MailingVersion.objects.create(
        mailing=mailing, language="ru", subject="Подпишите", html_body="<p>Привет</p>"
    )
    MailingVariant.objects.create(
        mailing=mailing, label="B", language="", subject="Other {{ last_name }}", from_name="Ann"
    )
    compiled = CompiledMailing(mailing)
    addresses = ["reader@example.org", "Mixed.Case+tag@Example.ORG", "анна@пример.рф",
                 "o'brien@example.org", "x@münchen.de", "last@example.org"]  # fmt: skip
    messages = []
    for n, address in enumerate(addresses * 2):
        fields = merge_fields(
            compiled=compiled, supporter_id=n, email=address, first_name=["", "Ann"][n % 2],
            last_name="Lee & <Co>", country="GB",
        )  # fmt: skip
        messages.append(
            build_message(
                compiled=compiled, fields=fields, delivery_id=n, version=["", "ru"][n // 6],
                variant=["", "B", "A"][n % 3], tracked_supporter_id=n,
            )
        )  # fmt: skip
    return messages


@pytest.mark.parametrize(
    "send_defaults",
    [
        {},
        {"metadata": {"campaign": "x", "delivery_id": "0"}, "tags": ["bulk"]},
        {"extra_headers": {"X-Org": "Rally", "List-Unsubscribe": "<x>"}, "track_opens": True},
        {"esp_extra": {"MessageStream": "broadcast"}},
    ],
)
def test_postmark_batch_json_is_what_anymail_builds_for_each_message(settings, send_defaults):
    from mailings.sending.esp.postmark import message_payloads

    backend = postmark_backend(settings, **send_defaults)
    messages = varied_appeals()
    built_by_anymail = []
    build = backend.build_message_payload
    backend.build_message_payload = lambda m, d: built_by_anymail.append(m) or build(m, d)

    ours = message_payloads(backend, messages)

    backend.build_message_payload = build
    # One a sender (the mailing's, variant B's) and each message to an address anymail must
    # parse itself (3 of 6: non-ASCII, an apostrophe), unless a default makes each its own.
    assert len(built_by_anymail) == (12 if "esp_extra" in send_defaults else 2 + 6)

    anymails = [backend.build_message_payload(m, backend.send_defaults).data for m in messages]
    assert ours == anymails
    assert len({payload["To"] for payload in ours}) == 6


@pytest.mark.parametrize(
    "address",
    ["reader@example.org", "Mixed.Case+tag@Example.ORG", "o'brien@example.org",
     "Ann Lee <ann@example.org>", "анна@пример.рф", '"Lee, Ann" <ann@example.org>'],
)  # fmt: skip
def test_an_address_header_is_written_as_parsing_it_would_write_it(address):
    from email.utils import formataddr, parseaddr

    from mailings.sending.esp.smtp import _address_header

    name, addr = parseaddr(address)
    assert _address_header(address) == (formataddr((name, addr), charset="utf-8") if name else addr)


@given(
    text=st.lists(
        st.sampled_from(["a", "Я", " ", "\t", "=", ".", "\n", "\r\n", "\r", "<a>", "é", "x" * 90]),
        max_size=200,
    ).map("".join)
)
def test_quoted_printable_line_by_line_is_what_binascii_gives_for_the_whole(text):
    import binascii

    from mailings.sending.esp.smtp import _quoted_printable

    lf_text = text.replace("\r\n", "\n").replace("\r", "\n")
    whole = binascii.b2a_qp(lf_text.encode("utf-8"), istext=True).decode("ascii")
    assert _quoted_printable(text) == whole.replace("\n", "\r\n")
    # Twice: the second time from the cache.
    assert _quoted_printable(text) == whole.replace("\n", "\r\n")
