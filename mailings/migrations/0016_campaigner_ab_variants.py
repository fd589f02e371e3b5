"""Give the Campaigner group the A/B test variants: add, change, delete and view them.

The rights are frozen here, as a migration's data must be; config/lib/roles.py holds the role
as it is now, and tests/mailings/test_roles_and_audit.py fails while the two differ. The group
is made, and its permissions created, as 0009 does.
"""

import importlib

from django.db import migrations

CAMPAIGNER_GROUP = "Campaigner"
CAMPAIGNER_PERMISSIONS = {
    "mailings": [
        "add_mailing", "change_mailing", "view_mailing",
        "send_mailing", "approve_mailing", "control_mailing", "test_send_mailing",
        "view_delivery", "view_trackingevent", "view_outboxmessage", "view_mailingauditentry",
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
    ],
}  # fmt: skip

_first = importlib.import_module("mailings.migrations.0009_campaigner_group")


def grant_campaigner_rights(apps, schema_editor):
    _first.create_campaigner_group(apps, schema_editor, permissions=CAMPAIGNER_PERMISSIONS)


def grant_earlier_rights(apps, schema_editor):
    _first.create_campaigner_group(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("mailings", "0015_ab_tests"),
    ]

    operations = [migrations.RunPython(grant_campaigner_rights, grant_earlier_rights)]
