import pytest
from django.contrib.auth.models import Group, Permission, User
from hypothesis import HealthCheck, settings

from config.lib.roles import campaigner_group_ensure

# The property tests run the same examples on every run, so CI is deterministic; a failure
# found once is found again. HYPOTHESIS_PROFILE=thorough searches wider, by hand.
settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("ci")

# Rally's own apps: a viewer may view every model in them.
RALLY_APPS = ("supporters", "campaigns", "mailings")


def role_user(role: str) -> User:
    """Return a logged-in-able staff user in one of the roles the suite tries."""
    if role == "superuser":
        return User.objects.create_superuser("root", password="x")
    user = User.objects.create_user(role, password="x", is_staff=True)
    if role == "viewer":
        user.user_permissions.set(
            Permission.objects.filter(
                content_type__app_label__in=RALLY_APPS, codename__startswith="view_"
            )
        )
    elif role == "campaigner":
        user.groups.add(campaigner_group_ensure(group_model=Group, permission_model=Permission))
    elif role != "staff_without_permissions":
        raise ValueError(role)
    return User.objects.get(pk=user.pk)  # a fresh object: no cached permissions


@pytest.fixture
def superuser_client(client):
    client.force_login(role_user("superuser"))
    return client
