"""Record what a bulk message's reader did: followed a tracked link, loaded the open pixel.

Each is a web request on the reader's way (the redirect waits on it), so each is one INSERT
and one UPDATE by the (mailing, supporter) unique index at most, and a repeat is harmless: the
first click and the first open keep their time.
"""

from django.db import IntegrityError, transaction
from django.db.models import Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from mailings.models import Delivery, LinkClick

_URL_MAX_LENGTH = LinkClick._meta.get_field("url").max_length


def link_click_record(*, mailing_id: int, supporter_id: int, link_index: int, url: str) -> None:
    """Record one click: a LinkClick row, and the delivery's first click (and open) if unset.

    A click proves the message was opened, so it sets a missing `opened_at` too. A mailing or
    supporter deleted since the token was read is no error: nothing is recorded.
    """
    now = timezone.now()
    try:
        with transaction.atomic():
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
    except IntegrityError:
        pass  # the mailing or supporter was deleted meanwhile


def delivery_open_record(*, mailing_id: int, supporter_id: int) -> bool:
    """Set a delivery's first open from its pixel; return whether this was the first."""
    return bool(
        Delivery.objects.filter(
            mailing_id=mailing_id, supporter_id=supporter_id, opened_at__isnull=True
        ).update(opened_at=timezone.now())
    )
