"""Freeze a mailing's audience into the delivery ledger, each supporter with their A/B variant."""

from collections.abc import Callable, Iterator

from django.db import connection as db_connection
from django.db.models import Case, CharField, F, Max, Value, When
from django.utils import timezone

from mailings.models import Delivery, Mailing
from mailings.selectors import mailing_audience
from mailings.sending.ab_assignment import VariantAssignment, variant_assignment
from supporters.models import Supporter
from supporters.services import supporter_pauses_end

# The audience is frozen in slices, each its own statement and commit, so that sending starts
# after the first slice instead of after the whole audience, which takes long for a large list
# (docs/performance.md, "Snapshot and first message"). The first slice is the audience's first
# few thousand members, for a first message within a second; the rest go by ranges of supporter
# ids from there.
FIRST_SLICE_SIZE = 5_000
SLICE_IDS = 100_000
SQLITE_CHUNK_SIZE = 5_000


def delivery_snapshot(*, mailing_id: int, on_first_slice: Callable[[], None] | None = None) -> int:
    """Freeze a mailing's audience into PENDING Delivery rows; return how many are pending.

    Set-based and idempotent: the unique (mailing, supporter) constraint makes a second snapshot
    insert nothing, so a redelivered task is harmless. `on_first_slice` runs once the first
    slice is committed (never, for an empty audience), to start sending while the rest is
    frozen; batches that run out of rows before the snapshot is done wait for it (see
    `mailing_send_batch`).
    """
    mailing = Mailing.objects.get(pk=mailing_id)
    if mailing.ab_test_share is not None and not mailing.ab_status:
        # The test starts with its slice; mailing_finish_if_done then waits for the winner.
        Mailing.objects.filter(pk=mailing_id, ab_status="").update(
            ab_status=Mailing.ABStatus.TESTING
        )
    # Pauses over since the last sweep end now, or their supporters would miss this send.
    supporter_pauses_end()
    # An A/B test freezes its slice first, and the rest once the winner is known: the unique
    # (mailing, supporter) constraint leaves those in the slice as they were.
    assignment = variant_assignment(mailing)
    audience = _with_version_language(mailing, mailing_audience(mailing))
    # The first members by id, wherever they are: an audience that is a tag of a big table may
    # start millions of ids in, and ranges from the table's first id would scan to it first.
    first_ids = list(audience.order_by("pk").values_list("pk", flat=True)[:FIRST_SLICE_SIZE])
    if first_ids:
        first_slice = audience.filter(pk__gte=first_ids[0], pk__lte=first_ids[-1])
        _insert_deliveries(mailing_id, first_slice, assignment)
        _heartbeat(mailing_id)
        if on_first_slice is not None:
            on_first_slice()
        for low, high in _supporter_id_ranges(after=first_ids[-1]):
            _insert_deliveries(mailing_id, audience.filter(pk__gte=low, pk__lt=high), assignment)
            _heartbeat(mailing_id)
    Mailing.objects.filter(pk=mailing_id, audience_snapshot_at__isnull=True).update(
        audience_snapshot_at=timezone.now()
    )
    return Delivery.objects.filter(mailing_id=mailing_id, status=Delivery.Status.PENDING).count()


def _supporter_id_ranges(*, after: int) -> Iterator[tuple[int, int]]:
    """Yield [low, high) ranges covering every supporter id above `after` that exists now.

    Supporters who join during the snapshot may be left out: the audience is who was there
    when the campaigner pressed send.
    """
    last = Supporter.objects.aggregate(high=Max("pk"))["high"] or after
    low = after + 1
    while low <= last:
        yield (low, low + SLICE_IDS)
        low += SLICE_IDS


def _heartbeat(mailing_id: int) -> None:
    Mailing.objects.filter(pk=mailing_id).update(heartbeat_at=timezone.now())


def _with_version_language(mailing: Mailing, audience):
    """Annotate each supporter with the version they get: their language's, or "" (default)."""
    languages = list(mailing.versions.values_list("language", flat=True))
    return audience.annotate(
        version_language=Case(
            When(language__in=languages, then=F("language")),
            default=Value(""),
            output_field=CharField(),
        )
    )


def _insert_deliveries(mailing_id: int, supporters, assignment: VariantAssignment) -> None:
    now = timezone.now()
    supporter_ids = supporters.values("pk", "version_language")
    if db_connection.vendor == "postgresql":
        audience_sql, audience_params = supporter_ids.query.sql_with_params()
        variant_sql, in_slice_sql, assignment_params = assignment.sql("audience.supporter_id")
        with db_connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {Delivery._meta.db_table}
                    (mailing_id, supporter_id, version_language, variant, status, claimed_by,
                     esp_message_id, error, created_at, updated_at)
                SELECT %s, audience.supporter_id, audience.version_language, {variant_sql}, %s,
                    '', '', '', %s, %s
                FROM ({audience_sql}) AS audience (supporter_id, version_language)
                WHERE {in_slice_sql}
                ON CONFLICT DO NOTHING
                """,  # noqa: S608 -- the only interpolations are the ORM's own SQL, the table
                # name and the assignment's fixed SQL; every value is a parameter
                [
                    mailing_id,
                    *assignment_params["variant"],
                    Delivery.Status.PENDING,
                    now,
                    now,
                    *audience_params,
                    *assignment_params["in_slice"],
                ],
            )
        return
    chunk: list[Delivery] = []
    for supporter_id, version_language in supporter_ids.values_list(
        "pk", "version_language"
    ).iterator(chunk_size=SQLITE_CHUNK_SIZE):
        variant = assignment.variant_of(supporter_id)
        if variant is None:
            continue
        chunk.append(
            Delivery(
                mailing_id=mailing_id,
                supporter_id=supporter_id,
                version_language=version_language,
                variant=variant,
            )
        )
        if len(chunk) == SQLITE_CHUNK_SIZE:
            Delivery.objects.bulk_create(chunk, ignore_conflicts=True)
            chunk = []
    Delivery.objects.bulk_create(chunk, ignore_conflicts=True)
