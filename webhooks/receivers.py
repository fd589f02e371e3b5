"""Turn the lower apps' signals into webhook events, once the change that raised them commits.

Each receiver first asks whether any subscription hears the event type (subscribers.py, a
look-up in memory): when none does, which is the usual case, it returns at once, and signing
or sending pays nothing more. Otherwise the event is recorded by `transaction.on_commit`, so a
change rolled back sends nothing, and with `robust=True`, so a failure to record an event is
logged and never reaches the supporter signing or the batch sending. Nothing here waits on a
receiver's server: delivery is the `webhooks` queue's work.
"""

from django.db import transaction
from django.dispatch import receiver

from campaigns.signals import signatures_created
from mailings.signals import mailing_sent
from supporters.signals import (
    supporter_erasing,
    supporter_subscribed,
    supporter_suppressed,
    supporter_unsubscribed,
    supporters_sunset,
)

from . import services
from .event_types import (
    MAILING_SENT,
    SIGNATURE_CREATED,
    SUPPORTER_ERASED,
    SUPPORTER_SUBSCRIBED,
    SUPPORTER_SUPPRESSED,
    SUPPORTER_UNSUBSCRIBED,
)
from .subscribers import event_type_is_subscribed


def _after_commit(record, **arguments) -> None:
    def record_event() -> None:
        record(**arguments)

    # Named after the service, for the log line Django writes when a robust callback fails.
    record_event.__qualname__ = record.__qualname__
    transaction.on_commit(record_event, robust=True)


@receiver(signatures_created, dispatch_uid="webhooks.signatures_created")
def signatures_created_received(sender, signature_ids, **kwargs) -> None:
    if event_type_is_subscribed(SIGNATURE_CREATED):
        _after_commit(services.webhook_signature_events_record, signature_ids=list(signature_ids))


def _supporter_events(event_type: str, supporter_ids: list[int]) -> None:
    if event_type_is_subscribed(event_type):
        _after_commit(
            services.webhook_supporter_events_record,
            event_type=event_type,
            supporter_ids=supporter_ids,
        )


@receiver(supporter_subscribed, dispatch_uid="webhooks.supporter_subscribed")
def supporter_subscribed_received(sender, supporter_id, **kwargs) -> None:
    _supporter_events(SUPPORTER_SUBSCRIBED, [supporter_id])


@receiver(supporter_unsubscribed, dispatch_uid="webhooks.supporter_unsubscribed")
def supporter_unsubscribed_received(sender, supporter_id, **kwargs) -> None:
    _supporter_events(SUPPORTER_UNSUBSCRIBED, [supporter_id])


@receiver(supporter_suppressed, dispatch_uid="webhooks.supporter_suppressed")
def supporter_suppressed_received(sender, supporter_id, **kwargs) -> None:
    _supporter_events(SUPPORTER_SUPPRESSED, [supporter_id])


@receiver(supporters_sunset, dispatch_uid="webhooks.supporters_sunset")
def supporters_sunset_received(sender, supporter_ids, **kwargs) -> None:
    """The sunset flow suppresses for silence, set-based: each is a supporter.suppressed."""
    _supporter_events(SUPPORTER_SUPPRESSED, list(supporter_ids))


@receiver(supporter_erasing, dispatch_uid="webhooks.supporter_erasing")
def supporter_erasing_received(sender, supporter_id, **kwargs) -> None:
    """Scrub what is kept about them now, in the erasure's transaction; tell integrators after.

    The scrub runs whether or not anyone hears supporter.erased: events recorded earlier, for
    other types, may still be waiting to be delivered.
    """
    if event_type_is_subscribed(SUPPORTER_ERASED):
        data = services.webhook_erasure_event_data(supporter_id=supporter_id)
        if data is not None:
            _after_commit(
                services.webhook_erasure_event_record, supporter_id=supporter_id, data=data
            )
    services.webhook_events_scrub_person(supporter_id=supporter_id)


@receiver(mailing_sent, dispatch_uid="webhooks.mailing_sent")
def mailing_sent_received(sender, mailing_id, **kwargs) -> None:
    if event_type_is_subscribed(MAILING_SENT):
        _after_commit(services.webhook_mailing_event_record, mailing_id=mailing_id)
