"""Read a mailing's deliveries by status from the counters the database keeps, and rebuild them.

DeliveryCount is kept by triggers on the ledger (migration mailings/0025): every statement
that inserts, updates or deletes deliveries adds what it changed, in its own transaction. A
reader sums a mailing's rows in one statement, so it sees the figures of one moment, those a
count of the ledger would give in the same snapshot, at the cost of a few dozen rows however
large the mailing (docs/performance.md, "Report counters").

They cannot drift while the triggers stand: nothing reaches the ledger around them but a
TRUNCATE, triggers turned off by hand (`session_replication_role = replica`, as a logical
replica or a restore of data alone runs) or a fixture that loads counters beside the deliveries
they count. `delivery_counts_rebuild` mends a mailing's counters after such a repair.
"""

from django.db import connection, transaction
from django.db.models import Count, Sum

from mailings.models import Delivery, DeliveryCount

# As migration 0025 folds a mailing's rows: the rebuild holds the same advisory lock.
FOLD_LOCK_CLASS = 0x52_43_4E_54


def delivery_counts_of(mailing_id: int) -> dict[tuple[str, str], int]:
    """Return a mailing's deliveries by (status, skip reason) from its counters; none at 0."""
    rows = (
        DeliveryCount.objects.filter(mailing_id=mailing_id)
        .values_list("status", "skip_reason")
        .annotate(total=Sum("n"))
        .order_by()
    )
    return {(status, reason): total for status, reason, total in rows if total}


def ledger_delivery_counts(mailing_id: int) -> dict[tuple[str, str], int]:
    """Count a mailing's deliveries by (status, skip reason) from the ledger: every row read.

    What the counters must equal; for the rebuild on SQLite and for checking them.
    """
    rows = (
        Delivery.objects.filter(mailing_id=mailing_id)
        .values_list("status", "skip_reason")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {(status, reason): n for status, reason, n in rows}


def delivery_counts_rebuild(*, mailing_id: int) -> dict[tuple[str, str], int]:
    """Count a mailing's deliveries again from its ledger, replacing its counters; return them.

    Safe while the mailing sends: on PostgreSQL, with no counter row of the mailing being
    folded (the advisory lock the triggers fold under), one statement deletes the rows its
    snapshot sees and inserts the count of the ledger in the same snapshot, so a change
    committed after it keeps its own rows. SQLite writes one transaction at a time.
    """
    table = DeliveryCount._meta.db_table
    ledger = Delivery._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, (%s::bigint %% 2147483647)::int)",
                [FOLD_LOCK_CLASS, mailing_id],
            )
            cursor.execute(
                f"WITH replaced AS (DELETE FROM {table} WHERE mailing_id = %s) "  # noqa: S608
                f"INSERT INTO {table} (mailing_id, status, skip_reason, n) "
                f"SELECT mailing_id, status, skip_reason, COUNT(*) FROM {ledger} "
                "WHERE mailing_id = %s GROUP BY mailing_id, status, skip_reason",
                [mailing_id, mailing_id],
            )
        else:
            DeliveryCount.objects.filter(mailing_id=mailing_id).delete()
            DeliveryCount.objects.bulk_create(
                DeliveryCount(mailing_id=mailing_id, status=status, skip_reason=reason, n=n)
                for (status, reason), n in ledger_delivery_counts(mailing_id).items()
            )
    return delivery_counts_of(mailing_id)
