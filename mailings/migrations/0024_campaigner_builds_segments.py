"""Let the Campaigner group view, add and change saved segments (supporters.Segment).

A campaigner aims each appeal at a saved segment: they build and count it in the admin. Not
deleting one, as with tags. The rights are frozen here, as a migration's data must be;
config/lib/roles.py holds the role as it is now, and tests/mailings/test_roles_and_audit.py
fails while the two differ. The group is made, and its permissions created, as 0009 does.
"""

import importlib

from django.db import migrations

CAMPAIGNER_PERMISSIONS = {
    "mailings": [
        "add_mailing", "change_mailing", "view_mailing",
        "send_mailing", "approve_mailing", "control_mailing", "test_send_mailing",
        "preview_as_supporter",
        "view_delivery", "view_trackingevent", "view_mailingauditentry",
        "add_mailingversion", "change_mailingversion", "delete_mailingversion",
        "view_mailingversion",
        "add_mailingvariant", "change_mailingvariant", "delete_mailingvariant",
        "view_mailingvariant",
    ],
    "campaigns": [
        "add_campaign", "change_campaign", "view_campaign",
        "add_petition", "change_petition", "view_petition",
        "add_petitiontranslation", "change_petitiontranslation", "delete_petitiontranslation",
        "view_petitiontranslation", "view_signature",
    ],
    "supporters": [
        "view_supporter", "view_consentrecord", "add_tag", "change_tag", "view_tag",
        "add_segment", "change_segment", "view_segment",
    ],
}  # fmt: skip

_first = importlib.import_module("mailings.migrations.0009_campaigner_group")
_previous = importlib.import_module("mailings.migrations.0018_campaigner_previews_as_supporter")


def grant_campaigner_rights(apps, schema_editor):
    _first.create_campaigner_group(apps, schema_editor, permissions=CAMPAIGNER_PERMISSIONS)


def grant_earlier_rights(apps, schema_editor):
    _first.create_campaigner_group(
        apps, schema_editor, permissions=_previous.CAMPAIGNER_PERMISSIONS
    )


class Migration(migrations.Migration):
    dependencies = [
        ("mailings", "0023_sunset_audit_action"),
        # The segment's permissions are made for its model, which this migration made.
        ("supporters", "0010_engagement_segments_and_sunset"),
    ]

    operations = [
        migrations.RunPython(grant_campaigner_rights, grant_earlier_rights),
    ]
