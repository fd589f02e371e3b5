"""Add the permission to preview a mailing as a real supporter; give it to the Campaigner group,
and take the development outbox (every supporter's personal links) away from it.

The rights are frozen here, as a migration's data must be; config/lib/roles.py holds the role
as it is now, and tests/mailings/test_roles_and_audit.py fails while the two differ. The group
is made, and its permissions created, as 0009 does.
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
    ],
}  # fmt: skip

_first = importlib.import_module("mailings.migrations.0009_campaigner_group")
_previous = importlib.import_module("mailings.migrations.0016_campaigner_ab_variants")


def grant_campaigner_rights(apps, schema_editor):
    _first.create_campaigner_group(apps, schema_editor, permissions=CAMPAIGNER_PERMISSIONS)


def grant_earlier_rights(apps, schema_editor):
    _first.create_campaigner_group(
        apps, schema_editor, permissions=_previous.CAMPAIGNER_PERMISSIONS
    )


class Migration(migrations.Migration):
    dependencies = [
        ("mailings", "0017_delivery_reconcile"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="mailing",
            options={
                "ordering": ["-created_at"],
                "permissions": [
                    ("send_mailing", "Can send, schedule and unschedule a mailing"),
                    ("approve_mailing", "Can approve another campaigner's large send"),
                    ("control_mailing", "Can pause, resume and cancel a mailing"),
                    ("test_send_mailing", "Can send test copies of a mailing"),
                    (
                        "preview_as_supporter",
                        "Can preview and test-send a mailing as a real supporter",
                    ),
                ],
            },
        ),
        migrations.RunPython(grant_campaigner_rights, grant_earlier_rights),
    ]
