"""Fold a mailing's counter rows only in a READ COMMITTED transaction (PostgreSQL's default).

A REPEATABLE READ or SERIALIZABLE transaction that folded could find rows its snapshot still
shows already folded by a transaction committed since, and fail with a serialization error: the
writer's own change to the ledger with it. Such a transaction now only adds its rows; the next
fold in another transaction takes them in. Nothing in Rally writes the ledger outside READ
COMMITTED today; a script or a future writer might.
"""

from django.db import migrations

FOLD_LOCK_CLASS = 0x52_43_4E_54  # as in 0025

FOLD = """
CREATE OR REPLACE FUNCTION mailings_delivery_counts_fold(of_mailing bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF {guard} NOT pg_try_advisory_xact_lock({lock}, (of_mailing % 2147483647)::int) THEN
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
"""
READ_COMMITTED_ONLY = "current_setting('transaction_isolation') <> 'read committed' OR"


def replace_fold(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(FOLD.format(guard=READ_COMMITTED_ONLY, lock=FOLD_LOCK_CLASS))


def restore_fold(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(FOLD.format(guard="", lock=FOLD_LOCK_CLASS))


class Migration(migrations.Migration):

    dependencies = [
        ('mailings', '0025_delivery_counts'),
    ]

    operations = [
        migrations.RunPython(replace_fold, restore_fold),
    ]
