"""Staff users with exactly the mailing permissions a test names, logged in to the admin."""

from django.contrib.auth.models import Permission, User


def staff_user(*codenames: str, username: str = "staff") -> User:
    """Create a staff user holding only these `mailings` permissions."""
    user = User.objects.create_user(username, password="x", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="mailings", codename__in=codenames)
    )
    return user


def staff_client(client, *codenames: str, username: str = "staff"):
    """Log `client` in as a new staff user with only these `mailings` permissions."""
    client.force_login(staff_user(*codenames, username=username))
    return client
