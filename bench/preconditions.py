"""What a benchmark needs before it starts, each refused with what to do about it."""

import shutil

from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def require_migrated() -> None:
    """Refuse a database with migrations still to apply: the benchmark would measure the old."""
    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        raise CommandError("The database has unapplied migrations: run `manage.py migrate`.")


def require_postgresql(command: str) -> None:
    """Refuse a benchmark of a deployment on SQLite, whose numbers mean nothing for a server."""
    if connection.vendor != "postgresql":
        raise CommandError(
            f"{command} measures a deployment and needs PostgreSQL: set DATABASE_URL="
            "postgres://… (SQLite takes one writer at a time, so its numbers mean nothing "
            "for a server)."
        )


def require_wrk() -> str:
    """Return the path of wrk, the load generator, or refuse to start without it."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise CommandError("wrk is not installed; it is the load generator: apt-get install wrk")
    return wrk
