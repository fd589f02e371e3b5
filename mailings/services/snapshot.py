"""Freeze a mailing's audience into the delivery ledger."""

from collections.abc import Callable, Iterator

from django.db import connection as db_connection
from django.db.models import Max, Min
from django.utils import timezone

from mailings.models import Delivery, Mailing
from mailings.selectors import mailing_audience
from supporters.models import Supporter

# The audience is frozen in slices of supporter ids, each its own statement and commit, so that
# sending starts after the first slice instead of after the whole audience (29 s at 1M in one
# statement). The first slice is small, for a first message within a second or two.
FIRST_SLICE_IDS = 5_000
SLICE_IDS = 100_000
SQLITE_CHUNK_SIZE = 5_000


def delivery_snapshot(*, mailing_id: int, on_first_slice: Callable[[], None] | None = None) -> int:
    """Freeze a mailing's audience into PENDING Delivery rows; return how many are pending.

    Set-based and idempotent: the unique (mailing, supporter) constraint makes a second snapshot
    insert nothing, so a redelivered task is harmless. `on_first_slice` runs once the first
    slice is committed, to start sending while the rest is frozen; batches that run out of
    rows before the snapshot is done wait for it (see `mailing_send_batch`).
    """
    mailing = Mailing.objects.get(pk=mailing_id)
    audience = mailing_audience(mailing)
    for index, (low, high) in enumerate(_supporter_id_slices()):
        _insert_deliveries(mailing_id, audience.filter(pk__gte=low, pk__lt=high))
        Mailing.objects.filter(pk=mailing_id).update(heartbeat_at=timezone.now())
        if index == 0 and on_first_slice is not None:
            on_first_slice()
    Mailing.objects.filter(pk=mailing_id, audience_snapshot_at__isnull=True).update(
        audience_snapshot_at=timezone.now()
    )
    return Delivery.objects.filter(mailing_id=mailing_id, status=Delivery.Status.PENDING).count()


def _supporter_id_slices() -> Iterator[tuple[int, int]]:
    """Yield [low, high) ranges covering every supporter id that exists now.

    Supporters who join during the snapshot may be left out: the audience is who was there
    when the campaigner pressed send.
    """
    bounds = Supporter.objects.aggregate(low=Min("pk"), high=Max("pk"))
    if bounds["low"] is None:
        yield (0, 1)  # no supporters: one empty slice, so the first-slice hook still runs
        return
    low, last = bounds["low"], bounds["high"]
    size = FIRST_SLICE_IDS
    while low <= last:
        yield (low, low + size)
        low += size
        size = SLICE_IDS


def _insert_deliveries(mailing_id: int, supporters) -> None:
    now = timezone.now()
    supporter_ids = supporters.values("pk")
    if db_connection.vendor == "postgresql":
        audience_sql, audience_params = supporter_ids.query.sql_with_params()
        with db_connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {Delivery._meta.db_table}
                    (mailing_id, supporter_id, status, claimed_by, esp_message_id, error,
                     created_at, updated_at)
                SELECT %s, audience.supporter_id, %s, '', '', '', %s, %s
                FROM ({audience_sql}) AS audience (supporter_id)
                ON CONFLICT DO NOTHING
                """,  # noqa: S608 -- the only interpolations are the ORM's own SQL and table name
                [mailing_id, Delivery.Status.PENDING, now, now, *audience_params],
            )
        return
    chunk: list[Delivery] = []
    for supporter_id in supporter_ids.values_list("pk", flat=True).iterator(
        chunk_size=SQLITE_CHUNK_SIZE
    ):
        chunk.append(Delivery(mailing_id=mailing_id, supporter_id=supporter_id))
        if len(chunk) == SQLITE_CHUNK_SIZE:
            Delivery.objects.bulk_create(chunk, ignore_conflicts=True)
            chunk = []
    Delivery.objects.bulk_create(chunk, ignore_conflicts=True)
