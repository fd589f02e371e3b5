"""The roles Rally defines: what a campaigner may do, as (app, permission codename) lists.

The migration that last granted the group its rights (mailings 0024, after 0009 made it) keeps a
frozen copy of them, as a migration's data must; a change here needs a migration of its own, and
tests/mailings/test_roles_and_audit.py fails while the two differ.
"""

CAMPAIGNER_GROUP = "Campaigner"

# Compose, preview (as a real supporter too), test, send, schedule, approve, pause, resume,
# cancel, read the ledger; build the saved segments a mailing is sent to (not delete them).
# Not: delete supporters, export supporters' data (campaigns.export_signatures), change users,
# read the development outbox (every supporter's personal links; mailings.view_outboxmessage is
# no role's).
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


def campaigner_group_ensure(*, group_model, permission_model):
    """Create the Campaigner group if missing and give it exactly its permissions; return it.

    Takes the models so that the migration can pass its historical ones; anything else passes
    django.contrib.auth's Group and Permission. Raises when a permission does not exist yet.
    """
    group, _ = group_model.objects.get_or_create(name=CAMPAIGNER_GROUP)
    granted = []
    for app_label, codenames in CAMPAIGNER_PERMISSIONS.items():
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
    return group
