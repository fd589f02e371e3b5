"""Count each mailing's deliveries by status (and skip reason) as the ledger changes.

The progress page read these figures by counting a mailing's deliveries, a scan of every row
of it each time it polled. Triggers keep DeliveryCount instead, in the transaction of every
statement that changes the ledger, so that no writer (the snapshot, claims, outcomes, the
sweep, the reconciler, cancel, erasure, a raw UPDATE) can forget them.

PostgreSQL: statement-level triggers read the statement's rows (transition tables), group them
by (mailing, status, skip reason) and insert the amounts as new rows, never updating one: a
writer takes no row lock here, so two workers' statements never wait for each other and no
lock order can deadlock. One insert in 64 (by the new row's id) folds the mailing's rows into
one per key, unless another transaction is folding them (an advisory lock it does not wait
for). The folding deletes only committed rows of that mailing and inserts their sums in the
same transaction: a reader sums the rows it sees and gets the same figures before and after.

SQLite: row-level triggers (it has no others) keep one row per key up to date, under
SQLite's single write lock.

The SQL is frozen here, as a migration's must be; mailings/delivery_counts.py reads and
rebuilds the counters.
"""

from django.db import migrations, models
import django.db.models.deletion

# The first key of the advisory lock that folds a mailing's counter rows (the second is the
# mailing's id); mailings/delivery_counts.py takes it to rebuild them.
FOLD_LOCK_CLASS = 0x52_43_4E_54  # "RCNT"
# A mailing's rows are folded after one insert in this many, on average.
FOLD_EVERY = 64

POSTGRESQL_FORWARDS = f"""
CREATE FUNCTION mailings_delivery_counts_fold(of_mailing bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock({FOLD_LOCK_CLASS}, (of_mailing % 2147483647)::int) THEN
        RETURN;
    END IF;
    WITH folded AS (
        DELETE FROM mailings_deliverycount WHERE mailing_id = of_mailing
        RETURNING status, skip_reason, n
    )
    INSERT INTO mailings_deliverycount (mailing_id, status, skip_reason, n)
    SELECT of_mailing, status, skip_reason, sum(n) FROM folded
    GROUP BY status, skip_reason HAVING sum(n) <> 0;
END $$;

CREATE FUNCTION mailings_delivery_counts_add() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    to_fold bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        WITH added AS (
            INSERT INTO mailings_deliverycount (mailing_id, status, skip_reason, n)
            SELECT mailing_id, status, skip_reason, count(*) FROM new_rows
            GROUP BY mailing_id, status, skip_reason
            RETURNING id, mailing_id
        )
        SELECT array_agg(DISTINCT mailing_id) FILTER (WHERE id % {FOLD_EVERY} = 0)
        INTO to_fold FROM added;
    ELSIF TG_OP = 'UPDATE' THEN
        WITH added AS (
            INSERT INTO mailings_deliverycount (mailing_id, status, skip_reason, n)
            SELECT mailing_id, status, skip_reason, sum(n) FROM (
                SELECT mailing_id, status, skip_reason, -1 AS n FROM old_rows
                UNION ALL
                SELECT mailing_id, status, skip_reason, 1 AS n FROM new_rows
            ) AS moved
            GROUP BY mailing_id, status, skip_reason HAVING sum(n) <> 0
            RETURNING id, mailing_id
        )
        SELECT array_agg(DISTINCT mailing_id) FILTER (WHERE id % {FOLD_EVERY} = 0)
        INTO to_fold FROM added;
    ELSE
        WITH added AS (
            INSERT INTO mailings_deliverycount (mailing_id, status, skip_reason, n)
            SELECT mailing_id, status, skip_reason, -count(*) FROM old_rows
            GROUP BY mailing_id, status, skip_reason
            RETURNING id, mailing_id
        )
        SELECT array_agg(DISTINCT mailing_id) FILTER (WHERE id % {FOLD_EVERY} = 0)
        INTO to_fold FROM added;
    END IF;
    PERFORM mailings_delivery_counts_fold(mailing_id) FROM unnest(to_fold) AS mailing_id;
    RETURN NULL;
END $$;

CREATE TRIGGER mailings_delivery_counts_insert AFTER INSERT ON mailings_delivery
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION mailings_delivery_counts_add();

CREATE TRIGGER mailings_delivery_counts_update AFTER UPDATE ON mailings_delivery
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION mailings_delivery_counts_add();

CREATE TRIGGER mailings_delivery_counts_delete AFTER DELETE ON mailings_delivery
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION mailings_delivery_counts_add();

CREATE FUNCTION mailings_delivery_counts_forget() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM mailings_deliverycount WHERE mailing_id IN (SELECT id FROM old_mailings);
    RETURN NULL;
END $$;

CREATE TRIGGER mailings_mailing_delivery_counts_forget AFTER DELETE ON mailings_mailing
REFERENCING OLD TABLE AS old_mailings
FOR EACH STATEMENT EXECUTE FUNCTION mailings_delivery_counts_forget();
"""

POSTGRESQL_BACKWARDS = """
DROP TRIGGER mailings_mailing_delivery_counts_forget ON mailings_mailing;
DROP FUNCTION mailings_delivery_counts_forget();
DROP TRIGGER mailings_delivery_counts_delete ON mailings_delivery;
DROP TRIGGER mailings_delivery_counts_update ON mailings_delivery;
DROP TRIGGER mailings_delivery_counts_insert ON mailings_delivery;
DROP FUNCTION mailings_delivery_counts_add();
DROP FUNCTION mailings_delivery_counts_fold(bigint);
"""

_SQLITE_KEY = "mailing_id = {row}.mailing_id AND status = {row}.status AND skip_reason = {row}.skip_reason"
_SQLITE_ADD = (
    "INSERT INTO mailings_deliverycount (mailing_id, status, skip_reason, n) "
    "SELECT NEW.mailing_id, NEW.status, NEW.skip_reason, 0 WHERE NOT EXISTS "
    f"(SELECT 1 FROM mailings_deliverycount WHERE {_SQLITE_KEY.format(row='NEW')}); "
    f"UPDATE mailings_deliverycount SET n = n + 1 WHERE {_SQLITE_KEY.format(row='NEW')};"
)
_SQLITE_REMOVE = (
    f"UPDATE mailings_deliverycount SET n = n - 1 WHERE {_SQLITE_KEY.format(row='OLD')};"
)
SQLITE_FORWARDS = [
    f"CREATE TRIGGER mailings_delivery_counts_insert AFTER INSERT ON mailings_delivery "
    f"BEGIN {_SQLITE_ADD} END",
    "CREATE TRIGGER mailings_delivery_counts_update "
    "AFTER UPDATE OF mailing_id, status, skip_reason ON mailings_delivery "
    "WHEN OLD.mailing_id IS NOT NEW.mailing_id OR OLD.status IS NOT NEW.status "
    "OR OLD.skip_reason IS NOT NEW.skip_reason "
    f"BEGIN {_SQLITE_REMOVE} {_SQLITE_ADD} END",
    f"CREATE TRIGGER mailings_delivery_counts_delete AFTER DELETE ON mailings_delivery "
    f"BEGIN {_SQLITE_REMOVE} END",
    "CREATE TRIGGER mailings_mailing_delivery_counts_forget AFTER DELETE ON mailings_mailing "
    "BEGIN DELETE FROM mailings_deliverycount WHERE mailing_id = OLD.id; END",
]
SQLITE_BACKWARDS = [
    "DROP TRIGGER mailings_mailing_delivery_counts_forget",
    "DROP TRIGGER mailings_delivery_counts_delete",
    "DROP TRIGGER mailings_delivery_counts_update",
    "DROP TRIGGER mailings_delivery_counts_insert",
]
# The deliveries there already, counted once, in the transaction that made the triggers: on
# PostgreSQL CREATE TRIGGER holds writers of the ledger until it commits.
BACKFILL = (
    "INSERT INTO mailings_deliverycount (mailing_id, status, skip_reason, n) "
    "SELECT mailing_id, status, skip_reason, COUNT(*) FROM mailings_delivery "
    "GROUP BY mailing_id, status, skip_reason"
)


def create_triggers(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor == "postgresql":
            cursor.execute(POSTGRESQL_FORWARDS)
        else:
            for statement in SQLITE_FORWARDS:
                cursor.execute(statement)
        cursor.execute(BACKFILL)


def drop_triggers(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor == "postgresql":
            cursor.execute(POSTGRESQL_BACKWARDS)
        else:
            for statement in SQLITE_BACKWARDS:
                cursor.execute(statement)
        cursor.execute("DELETE FROM mailings_deliverycount")


class Migration(migrations.Migration):

    dependencies = [
        ('mailings', '0024_campaigner_builds_segments'),
    ]

    operations = [
        migrations.CreateModel(
            name='DeliveryCount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('claimed', 'Claimed by a worker'), ('sent', 'Sent'), ('failed', 'Failed'), ('skipped', 'Skipped'), ('cancelled', 'Cancelled before sending'), ('unknown', 'Unknown (worker lost)')], max_length=16)),
                ('skip_reason', models.CharField(blank=True, max_length=32)),
                ('n', models.BigIntegerField()),
                ('mailing', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='mailings.mailing')),
            ],
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
