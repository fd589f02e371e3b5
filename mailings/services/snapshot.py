"""Freeze a mailing's audience into the delivery ledger."""

from django.db import connection as db_connection
from django.utils import timezone

from mailings.models import Delivery, Mailing
from mailings.selectors import mailing_audience

SNAPSHOT_CHUNK_SIZE = 5000


def delivery_snapshot(*, mailing_id: int) -> int:
    """Freeze a mailing's audience into PENDING Delivery rows; return how many are pending.

    Set-based and idempotent: the unique (mailing, supporter) constraint makes a second snapshot
    insert nothing, so a redelivered task is harmless.
    """
    mailing = Mailing.objects.get(pk=mailing_id)
    now = timezone.now()
    audience_ids = mailing_audience(mailing).values("pk")
    if db_connection.vendor == "postgresql":
        audience_sql, audience_params = audience_ids.query.sql_with_params()
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
    else:
        chunk: list[Delivery] = []
        for supporter_id in audience_ids.values_list("pk", flat=True).iterator(
            chunk_size=SNAPSHOT_CHUNK_SIZE
        ):
            chunk.append(Delivery(mailing_id=mailing_id, supporter_id=supporter_id))
            if len(chunk) == SNAPSHOT_CHUNK_SIZE:
                Delivery.objects.bulk_create(chunk, ignore_conflicts=True)
                chunk = []
        Delivery.objects.bulk_create(chunk, ignore_conflicts=True)
    Mailing.objects.filter(pk=mailing_id, audience_snapshot_at__isnull=True).update(
        audience_snapshot_at=timezone.now()
    )
    return Delivery.objects.filter(mailing_id=mailing_id, status=Delivery.Status.PENDING).count()
