"""Staff users with exactly the permissions a test names, logged in to the admin."""

from django.contrib.auth.models import Permission, User
from django.db.models import Q


def staff_user(*codenames: str, username: str = "staff") -> User:
    """Create a staff user holding only these permissions.

    A bare codename is a `mailings` one; another app's is written "app_label.codename".
    """
    user = User.objects.create_user(username, password="x", is_staff=True)
    wanted = Q(pk__in=[])
    for name in codenames:
        app_label, _, codename = name.rpartition(".")
        wanted |= Q(content_type__app_label=app_label or "mailings", codename=codename)
    user.user_permissions.set(Permission.objects.filter(wanted))
    return user


def staff_client(client, *codenames: str, username: str = "staff"):
    """Log `client` in as a new staff user with only these permissions (see staff_user)."""
    client.force_login(staff_user(*codenames, username=username))
    return client
