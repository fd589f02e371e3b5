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


# Rows per statement in insert_many_unless_exist: well under SQLite's limit on parameters.
INSERT_CHUNK_ROWS = 500


def insert_many_unless_exist(model, rows: list[dict], *, key: tuple[str, ...]) -> dict[tuple, int]:
    """INSERT rows, skipping those a unique constraint already holds; return {key: new id}.

    `key` names the unique fields that tell rows apart: the result maps the values of `key` of
    each row that was inserted to its new id (rows repeating a key within `rows` are inserted
    once). Multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING`, a statement per
    INSERT_CHUNK_ROWS rows, so a batch costs the database one statement instead of one a row;
    run it inside a transaction when the rows must be all or none. Like insert_unless_exists,
    values go through each field's own preparation and save() and signals do not run. Every
    row must have the same fields.
    """
    if not rows:
        return {}
    meta = model._meta
    names = list(rows[0])
    fields = [meta.get_field(name) for name in names]
    key_columns = [meta.get_field(name).column for name in key]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    row_placeholder = "(" + ", ".join(["%s"] * len(fields)) + ")"
    returning = ", ".join(quote(column) for column in (meta.pk.column, *key_columns))
    inserted: dict[tuple, int] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(rows), INSERT_CHUNK_ROWS):
            chunk = rows[start : start + INSERT_CHUNK_ROWS]
            params = [
                field.get_db_prep_save(row[field.name], connection=connection)
                for row in chunk
                for field in fields
            ]
            cursor.execute(
                f"INSERT INTO {quote(meta.db_table)} ({columns}) "  # noqa: S608
                f"VALUES {', '.join([row_placeholder] * len(chunk))} ON CONFLICT DO NOTHING "
                f"RETURNING {returning}",
                params,
            )
            for pk, *key_values in cursor.fetchall():
                inserted[tuple(key_values)] = pk
    return inserted
