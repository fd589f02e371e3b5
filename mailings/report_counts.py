"""Keep a mailing's report counters as the ledger changes, in the transaction that changes it.

Every room that writes the ledger calls here before it commits, which is why this sits beside
the models, below the rooms; what each figure means is mailings/report_figures.py. The
writers: the send queue (sent), webhook processing (deliveries, bounces, complaints, opens and
clicks the ESP reports), the click redirect and the open pixel, an unsubscribe through a
message's link or header, and a signature credited to a mailing. A batch that rolls back takes
its counts with it, and one run again counts once.

A change to deliveries is counted by difference: the rows are read locked before the change
(`DeliveryChanges.read_locked`, `watch_reader`), `count` reads them after it (or is told what
the change left in them), and each figure a row began or stopped meeting moves by one, in the
hour the row dates it (never later than now). So an event that changes nothing (a replay, a
second click, a "delivered" after a bounce) counts nothing, and two workers changing one row
count once between them.

Amounts are gathered per row of counters and written at once: an upsert of the hours and one
of the breakdowns (`INSERT … ON CONFLICT … DO UPDATE SET n = n + excluded.n`, which
PostgreSQL and SQLite both speak), in key order, as one statement on PostgreSQL, so that two
transactions take the same counters' locks in the same order. Writers call it last, just
before they commit: the counters of a busy hour are locked only from then until the commit.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection
from django.utils import timezone

from campaigns.models import Signature
from mailings.models import REPORT_FIGURES, Delivery, LinkClick, ReportBreakdown, ReportHour
from mailings.report_figures import (
    STATE_COLUMNS,
    DeliveryState,
    breakdown_keys,
    delivery_figure_times,
    hour_of,
)

Dimension = ReportBreakdown.Dimension
# Rows per upsert statement: 13 parameters a row keeps it far below SQLite's limit.
UPSERT_CHUNK_ROWS = 500


@dataclass(frozen=True)
class DeliveryKeys:
    """What a delivery's figures are broken down by: fixed once its audience is frozen."""

    mailing_id: int
    language: str
    variant: str
    email: str

    @classmethod
    def of(cls, delivery: Delivery) -> "DeliveryKeys":
        """Return a Delivery's keys (its supporter loaded, for the address)."""
        return cls(
            delivery.mailing_id, delivery.version_language, delivery.variant,
            delivery.supporter.email,
        )  # fmt: skip


class ReportChanges:
    """Amounts to add to mailings' counters, gathered, then written at once by `write`."""

    def __init__(self, *, now: datetime | None = None):
        self.now = now or timezone.now()
        self.hours: dict[tuple[int, datetime], Counter] = defaultdict(Counter)
        self.breakdowns: dict[tuple[int, str, str], Counter] = defaultdict(Counter)

    def add(
        self,
        figure: str,
        *,
        keys: DeliveryKeys | None,
        at: datetime,
        amount: int = 1,
        mailing_id: int | None = None,
        link_index: int | None = None,
    ) -> None:
        """Count `amount` more of `figure` at `at` (no later than now), under a delivery's keys.

        Without keys (a click whose delivery is gone) only the hour, and the link, count.
        """
        mailing_id = keys.mailing_id if keys else mailing_id
        self.hours[mailing_id, hour_of(min(at, self.now))][figure] += amount
        if keys is not None:
            for dimension, key in breakdown_keys(
                language=keys.language, variant=keys.variant, email=keys.email
            ):
                self.breakdowns[mailing_id, dimension, key][figure] += amount
        if link_index is not None:
            self.breakdowns[mailing_id, Dimension.LINK, str(link_index)][figure] += amount

    def write(self) -> None:
        """Add the gathered amounts to the counters: one statement on PostgreSQL, if any changed."""
        if not settings.RALLY_REPORT_BUCKETS:
            return
        hours = [
            (key, counts) for key, counts in sorted(self.hours.items()) if any(counts.values())
        ]
        breakdowns = [
            (key, counts) for key, counts in sorted(self.breakdowns.items()) if any(counts.values())
        ]
        _execute_together(
            _upsert_statements(ReportHour, ("mailing_id", "hour"), hours)
            + _upsert_statements(ReportBreakdown, ("mailing_id", "dimension", "key"), breakdowns)
        )
        self.hours.clear()
        self.breakdowns.clear()


class DeliveryChanges:
    """A change to deliveries about to be made, to be counted once made (see the module)."""

    def __init__(self, keys: dict[int, DeliveryKeys], before: dict[int, DeliveryState]):
        self.keys = keys
        self.before = before

    @classmethod
    def read_locked(cls, deliveries: Iterable[Delivery]) -> "DeliveryChanges":
        """Watch deliveries the caller read locked (select_for_update), before it changes them.

        Their rows as read are the state before: nobody else can change them until the
        caller's transaction ends. Their supporters must be loaded (select_related), for the
        keys. Webhook processing reads its deliveries so, which saves a query a batch.
        """
        keys, before = {}, {}
        for delivery in deliveries:
            keys[delivery.pk] = DeliveryKeys.of(delivery)
            before[delivery.pk] = DeliveryState(
                *(getattr(delivery, column) for column in STATE_COLUMNS)
            )
        return cls(keys, before if settings.RALLY_REPORT_BUCKETS else {})

    @classmethod
    def watch_reader(cls, *, mailing_id: int, supporter_id: int) -> "DeliveryChanges":
        """Lock and read one supporter's delivery of a mailing (none if there is none)."""
        if not settings.RALLY_REPORT_BUCKETS:
            return cls({}, {})
        rows = (
            Delivery.objects.select_for_update(of=("self",))
            .filter(mailing_id=mailing_id, supporter_id=supporter_id)
            .values_list("pk", "version_language", "variant", "supporter__email", *STATE_COLUMNS)
        )
        keys, before = {}, {}
        for pk, language, variant, email, *state in rows:
            keys[pk] = DeliveryKeys(mailing_id, language, variant, email)
            before[pk] = DeliveryState(*state)
        return cls(keys, before)

    def count(
        self,
        changes: ReportChanges | None = None,
        *,
        after: dict[int, DeliveryState] | None = None,
    ) -> None:
        """Count how the rows' figures moved; write, unless given `changes` to add to.

        The rows as they are now are read again, unless the caller says what it left in them
        (`after`, as webhook processing does). A caller that counts more in the same
        transaction passes its own ReportChanges and writes them all at once.
        """
        own = changes is None
        changes = ReportChanges() if changes is None else changes
        if after is None:
            after = _states(self.keys)
        for pk, keys in self.keys.items():
            old, new = self.before.get(pk), after.get(pk)
            if old is not None and new is not None and old != new:
                _count_difference(changes, keys, old, new)
        if own:
            changes.write()


def _count_difference(
    changes: ReportChanges, keys: DeliveryKeys, old: DeliveryState, new: DeliveryState
) -> None:
    old_times = delivery_figure_times(old, fallback=changes.now)
    new_times = delivery_figure_times(new, fallback=changes.now)
    for figure in old_times.keys() - new_times.keys():
        changes.add(figure, keys=keys, at=old_times[figure], amount=-1)
    for figure in new_times.keys() - old_times.keys():
        changes.add(figure, keys=keys, at=new_times[figure])


def _states(keys: dict[int, DeliveryKeys]) -> dict[int, DeliveryState]:
    """Read the deliveries' STATE_COLUMNS.

    In SQL of its own: the ORM's compiling of a query costs more than the query, and this runs
    in every batch of webhook events (docs/performance.md, "Report counters").
    """
    if not keys or not settings.RALLY_REPORT_BUCKETS:
        return {}
    ids = sorted(keys)
    columns = ", ".join(connection.ops.quote_name(column) for column in ("id", *STATE_COLUMNS))
    table = connection.ops.quote_name(Delivery._meta.db_table)
    if connection.vendor == "postgresql":
        where, params = "id = ANY(%s)", [ids]
    else:
        where, params = f"id IN ({', '.join(['%s'] * len(ids))})", ids
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {table} WHERE {where}", params)  # noqa: S608
        rows = cursor.fetchall()
    return {pk: DeliveryState(*map(_aware, state)) for pk, *state in rows}


def _aware(value):
    # SQLite hands back naive datetimes (in UTC) where the ORM would make them aware.
    if isinstance(value, datetime) and timezone.is_naive(value):
        return value.replace(tzinfo=UTC)
    return value


def report_sends_count(
    *,
    delivery_ids: Sequence[int],
    at: datetime,
    keys: Mapping[int, DeliveryKeys] | None = None,
) -> None:
    """Count deliveries just marked SENT at `at` (delivery_record_outcome, same transaction).

    Each delivery is marked SENT once: only a claimed row is sent, and claiming is atomic.
    `keys` are the deliveries' keys when the caller has them (the send queue read them at the
    claim); the deliveries are read for those it lacks.
    """
    if not delivery_ids or not settings.RALLY_REPORT_BUCKETS:
        return
    changes = ReportChanges(now=at)
    keys = keys or {}
    unknown_ids = [pk for pk in delivery_ids if pk not in keys]
    rows = Delivery.objects.filter(pk__in=unknown_ids).values_list(
        "mailing_id", "version_language", "variant", "supporter__email"
    )
    for mailing_id, language, variant, email in rows if unknown_ids else ():
        changes.add("sent", keys=DeliveryKeys(mailing_id, language, variant, email), at=at)
    for pk in delivery_ids:
        if pk in keys:
            changes.add("sent", keys=keys[pk], at=at)
    changes.write()


def report_click_count(
    delivery_changes: DeliveryChanges,
    *,
    mailing_id: int,
    supporter_id: int,
    link_index: int,
    at: datetime,
) -> None:
    """Count a click of a tracked link just recorded, and what it changed in its delivery.

    The link's unique clicks count a supporter's first click of it. Read after the click's
    LinkClick row is written, under the delivery's lock (watch_reader), so that two clicks
    of one supporter at once are counted one after the other.
    """
    if not settings.RALLY_REPORT_BUCKETS:
        return
    changes = ReportChanges(now=at)
    changes.add("clicks", keys=None, mailing_id=mailing_id, at=at, link_index=link_index)
    clicks_of_link = LinkClick.objects.filter(
        mailing_id=mailing_id, supporter_id=supporter_id, link_index=link_index
    )
    if clicks_of_link.count() == 1:
        changes.breakdowns[mailing_id, Dimension.LINK, str(link_index)]["unique_clicks"] += 1
    delivery_changes.count(changes)
    changes.write()


def report_signatures_count(*, signature_ids: Sequence[int]) -> None:
    """Count signatures just credited to mailings, under their signers' deliveries' keys.

    Called once per new signature, in the transaction that wrote it (campaigns' signal
    `signatures_credited`, received in mailings/reports/receivers.py).
    """
    if not signature_ids or not settings.RALLY_REPORT_BUCKETS:
        return
    changes = ReportChanges()
    signatures = list(
        Signature.objects.filter(pk__in=list(signature_ids), mailing__isnull=False).values_list(
            "mailing_id", "supporter_id", "created_at", "supporter__email"
        )
    )
    delivered = {
        (mailing_id, supporter_id): (language, variant)
        for mailing_id, supporter_id, language, variant in Delivery.objects.filter(
            mailing_id__in={row[0] for row in signatures},
            supporter_id__in={row[1] for row in signatures},
        ).values_list("mailing_id", "supporter_id", "version_language", "variant")
    }
    for mailing_id, supporter_id, created_at, email in signatures:
        language, variant = delivered.get((mailing_id, supporter_id), ("", ""))
        keys = DeliveryKeys(mailing_id, language, variant, email)
        changes.add("signatures", keys=keys, at=created_at)
    changes.write()


def _upsert_statements(
    model, key_fields: tuple[str, ...], rows: list[tuple[tuple, Counter]]
) -> list[tuple[str, list]]:
    """Return the statements that add each row's amounts to its counters, making new rows."""
    meta = model._meta
    quote = connection.ops.quote_name
    key_columns = [meta.get_field(name).column for name in key_fields]
    prepare = [meta.get_field(name) for name in key_fields]
    columns = [*key_columns, *REPORT_FIGURES]
    row_placeholder = "(" + ", ".join(["%s"] * len(columns)) + ")"
    updates = ", ".join(
        f"{quote(figure)} = {quote(meta.db_table)}.{quote(figure)} + excluded.{quote(figure)}"
        for figure in REPORT_FIGURES
    )
    statements = []
    for start in range(0, len(rows), UPSERT_CHUNK_ROWS):
        chunk = rows[start : start + UPSERT_CHUNK_ROWS]
        params = []
        for key, counts in chunk:
            params += [
                field.get_db_prep_save(value, connection=connection)
                for field, value in zip(prepare, key, strict=True)
            ]
            params += [counts[figure] for figure in REPORT_FIGURES]
        statements.append(
            (
                f"INSERT INTO {quote(meta.db_table)} ({', '.join(map(quote, columns))}) "  # noqa: S608
                f"VALUES {', '.join([row_placeholder] * len(chunk))} "
                f"ON CONFLICT ({', '.join(map(quote, key_columns))}) DO UPDATE SET {updates}",
                params,
            )
        )
    return statements


def _execute_together(statements: list[tuple[str, list]]) -> None:
    """Run the statements: on PostgreSQL as one (all but the last in WITH), else in turn.

    One round trip instead of two is a measurable share of a webhook batch's time. The
    statements' rows never overlap, so the order PostgreSQL runs them in changes nothing.
    """
    if not statements:
        return
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            for sql, params in statements:
                cursor.execute(sql, params)
            return
        *first, (last_sql, last_params) = statements
        steps = ", ".join(f"step_{n} AS ({sql})" for n, (sql, _) in enumerate(first))
        cursor.execute(
            f"WITH {steps} {last_sql}" if first else last_sql,
            [value for _, params in first for value in params] + last_params,
        )
