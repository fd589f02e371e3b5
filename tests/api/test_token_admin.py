"""API tokens in the admin: made by those allowed, shown once, revoked under a permission."""

import pytest
from django.urls import reverse

from api.models import ApiToken, token_digest
from api.services.tokens import api_token_create
from tests.admin_users import staff_client

pytestmark = pytest.mark.django_db


def test_an_administrator_makes_a_token_and_sees_its_secret_once(admin_client):
    response = admin_client.post(
        reverse("admin:api_apitoken_add"), {"name": "website", "scope": "helpers"}
    )
    assert response.status_code == 200
    token = ApiToken.objects.get(name="website")
    secret = response.context["secret"]
    assert token.digest == token_digest(secret) and secret.startswith(token.prefix)
    assert token.scope == "helpers" and token.created_by.is_superuser
    assert secret in response.content.decode()
    change_page = admin_client.get(reverse("admin:api_apitoken_change", args=[token.pk]))
    assert change_page.status_code == 200
    assert secret not in change_page.content.decode()
    listing = admin_client.get(reverse("admin:api_apitoken_changelist"))
    assert secret not in listing.content.decode() and token.prefix in listing.content.decode()


def test_staff_without_the_permission_can_neither_make_nor_revoke_tokens(client):
    token = api_token_create(name="crm", scope="write").token
    staff_client(client, "api.view_apitoken")
    add = client.post(reverse("admin:api_apitoken_add"), {"name": "mine", "scope": "write"})
    assert add.status_code == 403
    revoke = client.post(
        reverse("admin:api_apitoken_changelist"),
        {"action": "revoke_tokens", "_selected_action": [token.pk]},
    )
    assert revoke.status_code in (200, 302)
    token.refresh_from_db()
    assert token.revoked_at is None
    assert not ApiToken.objects.filter(name="mine").exists()


def test_the_revoke_permission_revokes_and_nothing_edits_or_deletes_a_token(client):
    token = api_token_create(name="crm", scope="write").token
    staff_client(client, "api.view_apitoken", "api.revoke_apitoken", "api.change_apitoken",
                 "api.delete_apitoken")  # fmt: skip
    client.post(
        reverse("admin:api_apitoken_changelist"),
        {"action": "revoke_tokens", "_selected_action": [token.pk]},
    )
    token.refresh_from_db()
    assert token.revoked_at is not None
    edit = client.post(
        reverse("admin:api_apitoken_change", args=[token.pk]), {"name": "renamed", "scope": "read"}
    )
    assert edit.status_code == 403
    delete = client.post(reverse("admin:api_apitoken_delete", args=[token.pk]), {"post": "yes"})
    assert delete.status_code == 403
    token.refresh_from_db()
    assert (token.name, token.scope) == ("crm", "write")
