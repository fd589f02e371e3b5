"""Record what a bulk message's reader did: followed a tracked link, loaded the open pixel.

Each is a web request on the reader's way (the redirect waits on it), so each is a few
statements by the (mailing, supporter) unique index: the delivery read and locked, an INSERT
and an UPDATE, and the report's counters (mailings/report_counts.py). A repeat is harmless:
the first click and the first open keep their time, and count once.
"""

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from mailings.models import Delivery, LinkClick
from mailings.report_counts import DeliveryChanges, report_click_count
from supporters.engagement_records import Engaged, engagement_record_engaged

_URL_MAX_LENGTH = LinkClick._meta.get_field("url").max_length


def link_click_record(*, mailing_id: int, supporter_id: int, link_index: int, url: str) -> None:
    """Record one click: a LinkClick row, the delivery's first click (and open) if unset.

    Every click counts as engaging in the supporter's Engagement row.

    A click proves the message was opened, so it sets a missing `opened_at` too. A mailing or
    supporter deleted since the token was read is no error: nothing is recorded.
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            delivery_changes = DeliveryChanges.watch_reader(
                mailing_id=mailing_id, supporter_id=supporter_id
            )
            LinkClick.objects.create(
                mailing_id=mailing_id,
                supporter_id=supporter_id,
                link_index=link_index,
                url=url[:_URL_MAX_LENGTH],
            )
            Delivery.objects.filter(mailing_id=mailing_id, supporter_id=supporter_id).filter(
                Q(clicked_at__isnull=True) | Q(opened_at__isnull=True)
            ).update(
                clicked_at=Coalesce("clicked_at", Value(now)),
                opened_at=Coalesce("opened_at", Value(now)),
            )
            report_click_count(
                delivery_changes, mailing_id=mailing_id, supporter_id=supporter_id,
                link_index=link_index, at=now,
            )  # fmt: skip
            engagement_record_engaged(engaged=Engaged.CLICKED, times=[(supporter_id, now)])
    except IntegrityError:
        pass  # the mailing or supporter was deleted meanwhile


def delivery_open_record(*, mailing_id: int, supporter_id: int) -> bool:
    """Set a delivery's first open from its pixel; return whether this was the first."""
    with transaction.atomic():
        delivery_changes = DeliveryChanges.watch_reader(
            mailing_id=mailing_id, supporter_id=supporter_id
        )
        now = timezone.now()
        opened = Delivery.objects.filter(
            mailing_id=mailing_id, supporter_id=supporter_id, opened_at__isnull=True
        ).update(opened_at=now)
        if opened:
            delivery_changes.count()
            # The first open of each message is enough to tell the engaged from the silent.
            engagement_record_engaged(engaged=Engaged.OPENED, times=[(supporter_id, now)])
    return bool(opened)


def delivery_unsubscribe_record(*, mailing_id: int, supporter_id: int, at: datetime) -> bool:
    """Record that a supporter left the list through a mailing's message; return if first.

    Called in the transaction that unsubscribed them (supporters' `unsubscribed_by_mailing`
    signal, mailings/reports/receivers.py); the report counts it as an unsubscribe the
    mailing caused. A supporter with no delivery of the mailing changes nothing.
    """
    delivery_changes = DeliveryChanges.watch_reader(
        mailing_id=mailing_id, supporter_id=supporter_id
    )
    recorded = Delivery.objects.filter(
        mailing_id=mailing_id, supporter_id=supporter_id, unsubscribed_at__isnull=True
    ).update(unsubscribed_at=at)
    if recorded:
        delivery_changes.count()
    return bool(recorded)
