"""Database helpers the ORM has no single call for."""

from django.db import connection


def insert_unless_exists(model, **values) -> int | None:
    """INSERT one row unless a unique constraint already holds it; return its id, or None.

    One statement (`INSERT … ON CONFLICT DO NOTHING RETURNING id`, on PostgreSQL and SQLite),
    where get-or-create costs a SELECT, a savepoint, the INSERT and its release: four round
    trips on the signing path, which has to take a thousand a second. Values go through each
    field's own preparation, so normalising fields still apply; the model's save() and signals
    do not run, so use it only for models that have none.
    """
    meta = model._meta
    fields = [meta.get_field(name) for name in values]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    params = [field.get_db_prep_save(values[field.name], connection=connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({columns}) "  # noqa: S608
            f"VALUES ({placeholders}) ON CONFLICT DO NOTHING "
            f"RETURNING {connection.ops.quote_name(meta.pk.column)}",
            params,
        )
        row = cursor.fetchone()
    return row[0] if row else None
