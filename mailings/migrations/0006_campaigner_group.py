"""Create the "Campaigner" group: compose, check, send and watch mailings; nothing more.

A campaigner may not delete supporters, export supporters' data (campaigns.export_signatures),
nor change users or settings. The group exists after `migrate` alone.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from mailings.roles import CAMPAIGNER_GROUP, campaigner_group_ensure


def create_campaigner_group(apps, schema_editor):
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
    campaigner_group_ensure(
        group_model=apps.get_model("auth", "Group"),
        permission_model=apps.get_model("auth", "Permission"),
    )


def remove_campaigner_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=CAMPAIGNER_GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("supporters", "0002_email_unique_index_and_lowercase_check"),
        ("campaigns", "0005_signature_export_permission"),
        ("mailings", "0005_approval_permissions_audit"),
    ]

    operations = [migrations.RunPython(create_campaigner_group, remove_campaigner_group)]
