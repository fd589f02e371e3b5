"""The fault suite's marker for a fault that exists on one database only.

A test marked `database("postgresql")` is deselected on SQLite, never skipped (the suite fails
on a skip): CI runs the suite on both databases, so each such test runs once, on the database
whose fault it injects. pytest's summary counts it as deselected.
"""

from django.db import connection


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "database(vendor): inject a fault of that database only (postgresql or sqlite); "
        "deselected on the other",
    )


def pytest_collection_modifyitems(config, items):
    keep, other_database = [], []
    for item in items:
        marker = item.get_closest_marker("database")
        if marker is None or marker.args[0] == connection.vendor:
            keep.append(item)
        else:
            other_database.append(item)
    if other_database:
        config.hook.pytest_deselected(items=other_database)
        items[:] = keep
