"""What supporters and campaigns tell mailings, which they may not import: their signals.

Both arrive inside the transaction of the change (an unsubscribe, new signatures). Each
receiver writes in a savepoint of its own and logs its failure rather than raising it: a
supporter's unsubscribe or signature must never fail for the sake of a report's count.
Connected in MailingsConfig.ready().
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction

from mailings.links.services import delivery_unsubscribe_record
from mailings.report_counts import report_signatures_count

logger = logging.getLogger(__name__)


def unsubscribed_by_mailing_receive(sender, *, supporter_id, mailing_id, at, **kwargs) -> None:
    """Record on the supporter's delivery that the mailing's message unsubscribed them."""
    with _contained(f"the unsubscribe of supporter {supporter_id} from mailing {mailing_id}"):
        delivery_unsubscribe_record(mailing_id=mailing_id, supporter_id=supporter_id, at=at)


def signatures_credited_receive(sender, *, signature_ids, **kwargs) -> None:
    """Count new signatures in the reports of the mailings they are credited to."""
    with _contained(f"signatures {list(signature_ids)}"):
        report_signatures_count(signature_ids=signature_ids)


@contextmanager
def _contained(what: str) -> Iterator[None]:
    try:
        with transaction.atomic():
            yield
    except Exception:  # noqa: BLE001 -- whatever went wrong, the supporter's change stands
        logger.exception("The report did not count %s", what)
