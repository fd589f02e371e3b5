"""Create the "Campaigner" group: compose, check, send and watch mailings; nothing more.

A campaigner may not delete supporters, export supporters' data (campaigns.export_signatures),
nor change users or settings. The group exists after `migrate` alone. Its rights are frozen
here, as a migration's data must be; later migrations that change the role (0016) freeze
their own copy and reuse `create_campaigner_group`.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

CAMPAIGNER_GROUP = "Campaigner"
CAMPAIGNER_PERMISSIONS = {
    "mailings": [
        "add_mailing", "change_mailing", "view_mailing",
        "send_mailing", "approve_mailing", "control_mailing", "test_send_mailing",
        "view_delivery", "view_trackingevent", "view_outboxmessage", "view_mailingauditentry",
        "add_mailingversion", "change_mailingversion", "delete_mailingversion",
        "view_mailingversion",
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


def grant_campaigner_rights(group_model, permission_model, permissions=CAMPAIGNER_PERMISSIONS):
    """Create the group if missing and give it exactly `permissions` (this migration's own)."""
    group, _ = group_model.objects.get_or_create(name=CAMPAIGNER_GROUP)
    granted = []
    for app_label, codenames in permissions.items():
        permissions = list(
            permission_model.objects.filter(
                content_type__app_label=app_label, codename__in=codenames
            )
        )
        missing = set(codenames) - {permission.codename for permission in permissions}
        if missing:
            raise LookupError(f"Permissions missing for the Campaigner group: {sorted(missing)}")
        granted += permissions
    group.permissions.set(granted)


def create_campaigner_group(apps, schema_editor, permissions=CAMPAIGNER_PERMISSIONS):
    # Permissions are made after migrations run (post_migrate); this group needs them now.
    # create_permissions skips an app without models_module, which a migration's app configs
    # lack. It is put back as it was: tests call this with the real registry, where None would
    # stop post_migrate from making any app's permissions again after a flush.
    for app_config in apps.get_app_configs():
        models_module = getattr(app_config, "models_module", None)
        app_config.models_module = True
        try:
            create_permissions(app_config, apps=apps, verbosity=0)
        finally:
            app_config.models_module = models_module
    grant_campaigner_rights(
        apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"), permissions
    )


def remove_campaigner_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=CAMPAIGNER_GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("supporters", "0002_email_unique_index_and_lowercase_check"),
        ("campaigns", "0005_signature_export_permission"),
        ("mailings", "0008_delivery_mailing_sent_at"),
    ]

    operations = [migrations.RunPython(create_campaigner_group, remove_campaigner_group)]
