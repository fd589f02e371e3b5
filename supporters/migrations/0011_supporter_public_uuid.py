import uuid

from django.db import migrations, models

import supporters.models


class Migration(migrations.Migration):
    """Give every supporter a public id, the OSDI API's and the webhooks'.

    The column's database default (RandomUUID) fills the rows already there, one fresh value
    each: PostgreSQL evaluates a volatile default per row when it adds the column, and Django
    rebuilds an SQLite table row by row, leaving the new column to its default.
    """

    dependencies = [
        ("supporters", "0010_engagement_segments_and_sunset"),
    ]

    operations = [
        migrations.AddField(
            model_name="supporter",
            name="uuid",
            field=models.UUIDField(
                db_default=supporters.models.RandomUUID(),
                default=uuid.uuid4,
                editable=False,
                unique=True,
            ),
        ),
    ]
