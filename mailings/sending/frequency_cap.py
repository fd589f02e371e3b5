"""The frequency cap: how many bulk mailings a supporter may get in a day and in a week.

Checked at claim (batches.delivery_claim_batch), one query per batch: a claimed delivery whose
supporter has already had RALLY_FREQUENCY_CAP_PER_DAY deliveries of other mailings in the last
24 hours, or RALLY_FREQUENCY_CAP_PER_WEEK in the last 7 days, is recorded SKIPPED with the cap
as its reason and never sent. 0 turns a cap off. Only the ledger counts: a test copy
(sending/test_send.py) and a transactional email have no Delivery row, so they are not bulk
mail and never count.

A delivery another mailing's worker has claimed and not yet recorded counts as sent now: two
mailings going out at the same time would otherwise each see the other's messages only once
they are sent, and a supporter in both would get them all. For the same reason, while another
mailing is sending, claims take turns (`claims_take_turns`), so that each claim sees the one
before it committed.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q

from mailings.models import Delivery, Mailing

SkipReason = Delivery.SkipReason

# The key of the PostgreSQL advisory lock claims take turns by: any fixed number that no other
# advisory lock of Rally's uses.
CLAIM_TURN_LOCK_KEY = 0x52_41_4C_4C_59_43_41_50  # "RALLYCAP"


def frequency_cap_on() -> bool:
    """Say whether either cap is set (a cap of 0 is off)."""
    return settings.RALLY_FREQUENCY_CAP_PER_DAY > 0 or settings.RALLY_FREQUENCY_CAP_PER_WEEK > 0


def frequency_cap_may_apply(*, mailing_id: int, now: datetime) -> bool:
    """Say whether any other mailing may have a delivery the cap counts: sent in the last 7
    days, or claimed now. When none may, a claim need not ask about its supporters.

    A delivery is claimed before it is sent, and a claim marks its mailing's heartbeat
    (batches._claim), as the reconciler does when it finds a delivery sent; a delivery is
    recorded within its lease of the claim, or the sweep marks it unknown. So a mailing with a
    delivery sent since a week ago, or claimed now, has beaten since a week and a lease ago.
    """
    if not frequency_cap_on():
        return False
    since = now - timedelta(days=7, seconds=settings.RALLY_SEND_LEASE_SECONDS)
    return Mailing.objects.filter(heartbeat_at__gte=since).exclude(pk=mailing_id).exists()


def supporters_over_frequency_cap(
    *, mailing_id: int, supporter_ids: list[int], now: datetime
) -> dict[int, str]:
    """Return the supporters among `supporter_ids` already at a cap, each with the cap's reason.

    Counts, in one query, the deliveries of other mailings sent to them in the last 7 days by
    `sent_at`, and those claimed right now. A supporter at both caps is given the daily one.

    The index on Delivery.supporter serves it: it reads every delivery each claimed supporter
    ever had, but those of one batch's supporters lie together in the table, since snapshots
    insert and claims update them in supporter order. A partial index of sent rows by
    (supporter, sent_at), which would read the last week alone, was measured and not kept: it
    saved little, for an entry a row at every claim and send (docs/performance.md, "Indexes").
    """
    per_day = settings.RALLY_FREQUENCY_CAP_PER_DAY
    per_week = settings.RALLY_FREQUENCY_CAP_PER_WEEK
    if not supporter_ids or (per_day <= 0 and per_week <= 0):
        return {}
    day_ago, week_ago = now - timedelta(days=1), now - timedelta(days=7)
    # A claimed row has no sent_at until it is sent: it counts as sent now, in both windows.
    in_flight = Q(status=Delivery.Status.CLAIMED)
    rows = (
        Delivery.objects.filter(
            supporter_id__in=supporter_ids,
            status__in=[Delivery.Status.SENT, Delivery.Status.CLAIMED],
        )
        .filter(in_flight | Q(sent_at__gte=week_ago))
        .exclude(mailing_id=mailing_id)
        .values("supporter_id")
        .annotate(
            last_day=Count("pk", filter=in_flight | Q(sent_at__gte=day_ago)), last_week=Count("pk")
        )
        .order_by()
        .values_list("supporter_id", "last_day", "last_week")
    )
    over = {}
    for supporter_id, last_day, last_week in rows:
        if 0 < per_day <= last_day:
            over[supporter_id] = SkipReason.FREQUENCY_CAP_DAY
        elif 0 < per_week <= last_week:
            over[supporter_id] = SkipReason.FREQUENCY_CAP_WEEK
    return over


def claims_take_turns(*, mailing_id: int) -> None:
    """Wait for any other claim to commit, when another mailing is sending and a cap is on.

    Called first in a claim's transaction. Two claims of different mailings at the same moment
    would each count the supporters' deliveries before the other's claim committed; in turns,
    each counts the other's. A mailing sending alone takes no turn: its own claims never count
    one another (other mailings only), so its workers claim side by side as before. A mailing
    that starts sending meanwhile claims nothing before its snapshot's first slice is frozen,
    long after any claim that began while it was not yet sending has committed.

    PostgreSQL only: SQLite runs one write transaction at a time anyway (IMMEDIATE).
    """
    if connection.vendor != "postgresql" or not frequency_cap_on():
        return
    others_sending = (
        Mailing.objects.filter(status=Mailing.Status.SENDING).exclude(pk=mailing_id).exists()
    )
    if others_sending:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CLAIM_TURN_LOCK_KEY])
