"""Test copies of a mailing: rendered as a chosen supporter (or the made-up sample one), sent
to a campaigner's own inbox.

They go through the transactional queue, never touch the ledger (no Delivery row), and are
recorded in the audit log.
"""

import re

from email_validator import EmailNotValidError, validate_email

from mailings.audit import mailing_audit_record
from mailings.content.rendering import (
    build_message,
    compiled_mailing,
    sample_merge_fields,
    supporter_merge_fields,
)
from mailings.models import Mailing, MailingAuditEntry
from mailings.sending import tasks
from supporters.models import Supporter

# Campaigners test with their own addresses; a longer list is a send, not a test.
TEST_SEND_MAX_ADDRESSES = 10
TEST_SUBJECT_PREFIX = "[TEST] "


class MailingTestSendRefused(ValueError):
    """The test send was not queued; the message says why, for the campaigner."""


def recipients_of_test_copies(text: str) -> list[str]:
    """Return the normalised addresses in `text` (comma, semicolon or newline separated).

    Raise MailingTestSendRefused naming the first malformed address, or when there are none or more
    than TEST_SEND_MAX_ADDRESSES.
    """
    addresses: list[str] = []
    for candidate in filter(None, (part.strip() for part in re.split(r"[,;\n\r]+", text))):
        try:
            address = validate_email(candidate, check_deliverability=False).normalized.lower()
        except EmailNotValidError as error:
            raise MailingTestSendRefused(
                f"“{candidate}” is not an email address: {error}"
            ) from error
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise MailingTestSendRefused("Give at least one address to send the test copy to.")
    if len(addresses) > TEST_SEND_MAX_ADDRESSES:
        raise MailingTestSendRefused(
            f"A test goes to at most {TEST_SEND_MAX_ADDRESSES} addresses; "
            f"{len(addresses)} were given."
        )
    return addresses


def mailing_test_send(
    *, mailing: Mailing, addresses: str, supporter: Supporter | None, actor
) -> list[str]:
    """Queue `[TEST]` copies of a mailing, rendered as `supporter` (None: the sample supporter);
    return the addresses.

    Nothing is queued or recorded when an address is refused.
    """
    recipients = recipients_of_test_copies(addresses)
    as_whom = f"supporter #{supporter.pk}" if supporter else "the made-up sample supporter"
    mailing_audit_record(
        mailing=mailing,
        action=MailingAuditEntry.Action.TEST_SENT,
        actor=actor,
        detail=f"as {as_whom} to {', '.join(recipients)}",
    )
    tasks.mailing_test_send_task.delay_on_commit(
        mailing.pk, supporter.pk if supporter else None, recipients
    )
    return recipients


def mailing_test_copies_send(
    *, mailing_id: int, supporter_id: int | None, addresses: list[str]
) -> int:
    """Render and send the test copies queued by mailing_test_send; return how many went.

    `supporter_id` None renders them as the sample supporter.
    """
    mailing = Mailing.objects.select_related("petition").filter(pk=mailing_id).first()
    supporter = Supporter.objects.filter(pk=supporter_id).first() if supporter_id else None
    if mailing is None or (supporter_id is not None and supporter is None):
        return 0  # deleted meanwhile: nothing to render
    compiled = compiled_mailing(mailing)
    if supporter is None:
        fields, version = sample_merge_fields(compiled), ""
    else:
        fields = supporter_merge_fields(compiled, supporter)
        # The version the send queue would give this supporter.
        version = compiled.version_for(supporter.language)
    for address in addresses:
        message = build_message(compiled=compiled, fields=fields, delivery_id=0, version=version)
        message.to = [address]
        message.subject = TEST_SUBJECT_PREFIX + message.subject
        # A mail client's unsubscribe button must not unsubscribe the supporter it was
        # rendered as; and no webhook event of a test copy is about a ledger row.
        message.extra_headers.pop("List-Unsubscribe", None)
        message.extra_headers.pop("List-Unsubscribe-Post", None)
        message.metadata = {"mailing_id": str(mailing_id), "test_copy": "1"}
        message.send()
    return len(addresses)
