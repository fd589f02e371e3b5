"""Every admin page and action, tried as each role: nothing seen or changed beyond its rights.

The pages come from the URL resolver and the admin site's registry (tests/security/walk.py),
so a page or action added later is tried without a line here. Each is opened (GET) and
submitted (POST) with the very forms a superuser is shown on it, and each ModelAdmin action is
run on every row; then:

- nothing is written that the role's permissions do not allow (a snapshot of every table
  before and after each request);
- no text of a model the role may not view reaches it (each model's rows carry a marker);
- no personal link of a real supporter (petition, unsubscribe, tracked link) reaches a role
  that may not view supporters: such a link lets its holder sign or unsubscribe as them;
- no file of personal data is downloaded without an export permission;
- a staff user without permissions opens none of a ModelAdmin's pages.
"""

import html
import re
from urllib.parse import unquote

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test import RequestFactory

from campaigns.links import read_petition_token
from campaigns.models import Signature
from mailings.content.tracked_links import read_click_token, read_open_token
from mailings.models import Delivery, MailingAuditEntry, OutboxMessage, TrackingEvent
from supporters.models import ConsentRecord, Supporter, SupporterAuditEntry, SupporterImport
from supporters.tokens import read_unsubscribe_mailto_token, read_unsubscribe_token
from tests.security.conftest import role_user
from tests.security.walk import Writes, admin_urls, shown_forms
from tests.security.world import world_build
from webhooks.models import WebhookDelivery, WebhookSubscription

pytestmark = pytest.mark.django_db

ROLES = ["staff_without_permissions", "mailing_viewer", "viewer", "campaigner"]
# Records the services write on behalf of an allowed action: who did what.
AUDIT_MODELS = {LogEntry, MailingAuditEntry, SupporterAuditEntry}
# A file of personal data may go only to a holder of one of these.
EXPORT_PERMISSIONS = {
    "supporters.export_supporters", "supporters.export_person", "campaigns.export_signatures",
    "supporters.import_supporters",
}  # fmt: skip
# Written by the mailing services on behalf of whoever may send or control a mailing.
SERVICE_WRITES = {Delivery: ("mailings.send_mailing", "mailings.control_mailing")}
# Whose text a role may not read without the right to view it. Editorial text (campaigns,
# petitions, mailings, tags) shows beside what refers to it, and the staff who edited a record
# in its history, by design; a staff user without permissions sees none of it either.
PERSONAL_MODELS = {
    Supporter, ConsentRecord, Signature, Delivery, TrackingEvent, OutboxMessage,
    SupporterImport, SupporterAuditEntry, WebhookSubscription, WebhookDelivery,
}  # fmt: skip
# A model whose admin gates viewing with a permission of its own, not view_<model>.
VIEW_PERMISSIONS = {SupporterImport: "supporters.import_supporters"}

_TOKENS = [
    (re.compile(r"[?&]t=([\w:.%-]+)"), lambda token: read_petition_token(token)),
    (re.compile(r"/unsubscribe/([\w:.%-]+)/"), lambda token: read_unsubscribe_token(token)),
    (re.compile(r"unsubscribe\+([\w-]+)@"), lambda token: read_unsubscribe_mailto_token(token)),
    (re.compile(r"/r/([\w:.%-]+)/"), lambda token: read_click_token(token)),
    (re.compile(r"/o/([\w:.%-]+)\.gif"), lambda token: read_open_token(token)),
]


def _role_user(role):
    if role == "mailing_viewer":
        # The "user who may only view mailings".
        from tests.admin_users import staff_user

        return staff_user("view_mailing", username="mailing_viewer")
    return role_user(role)


def may_write(user, role: str, model, kind: str) -> bool:
    meta = model._meta
    if meta.auto_created:  # a many-to-many table is part of the model that declares it
        meta, kind = meta.auto_created._meta, "change"
    if model in SERVICE_WRITES:
        return any(user.has_perm(permission) for permission in SERVICE_WRITES[model])
    if model in AUDIT_MODELS and kind == "add":
        # Only a role with some right to act leaves a record of acting.
        return role == "campaigner"
    return user.has_perm(f"{meta.app_label}.{kind}_{meta.model_name}")


def may_view(user, model) -> bool:
    meta = model._meta
    if model in VIEW_PERMISSIONS:
        return user.has_perm(VIEW_PERMISSIONS[model])
    return user.has_perm(f"{meta.app_label}.view_{meta.model_name}") or user.has_perm(
        f"{meta.app_label}.change_{meta.model_name}"
    )


def body_of(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


def personal_links(text: str, supporter_ids: set[int]) -> list[str]:
    """Return the tokens in `text` that are valid personal links of these supporters."""
    found = []
    for pattern, read in _TOKENS:
        for raw in pattern.findall(html.unescape(text)):
            named = read(unquote(raw))
            supporter_id = getattr(named, "supporter_id", named)
            if supporter_id in supporter_ids:
                found.append(raw)
    return found


class Walk:
    """One role's walk: every request made, and every problem seen, collected to be shown."""

    def __init__(self, client, world, role):
        self.client, self.world, self.role = client, world, role
        self.user = _role_user(role)
        self.problems: list[str] = []
        self.supporter_ids = {supporter.pk for supporter in world.objects[Supporter]}

    def request(self, method: str, path: str, data=None, *, model_admin=None):
        writes = Writes()
        with connection.execute_wrapper(writes):
            response = getattr(self.client, method)(path, data or {})
        if path.endswith("/logout/"):
            self.client.force_login(self.user)
        label = f"{self.role} {method.upper()} {path}"
        if response.status_code >= 500:
            self.problems.append(f"{label}: {response.status_code}")
        for model, kind in sorted(writes.found, key=str):
            if isinstance(model, str) or not may_write(self.user, self.role, model, kind):
                self.problems.append(f"{label}: {kind} of {getattr(model, '__name__', model)}")
        text = body_of(response)
        for model, marker in self.world.markers.items():
            watched = model in PERSONAL_MODELS or self.role == "staff_without_permissions"
            if watched and marker in text and not may_view(self.user, model):
                self.problems.append(f"{label}: shows a {model.__name__}'s text")
        if not self.user.has_perm("supporters.view_supporter") and (
            tokens := personal_links(text, self.supporter_ids)
        ):
            self.problems.append(f"{label}: shows a supporter's personal link {tokens[0]}")
        attachment = "attachment" in response.get("Content-Disposition", "")
        if attachment and not any(self.user.has_perm(p) for p in EXPORT_PERMISSIONS):
            self.problems.append(f"{label}: downloads a file of personal data")
        if (
            self.role == "staff_without_permissions"
            and model_admin is not None
            and response.status_code == 200
        ):
            self.problems.append(f"{label}: 200 for a staff user without permissions")
        return response


def superuser_request(superuser):
    request = RequestFactory().get("/admin/")
    request.user = superuser
    return request


def test_every_admin_page_and_action_keeps_to_each_roles_rights(client):
    """One walk per role over one world; the roles that may change things go last."""
    world = world_build()
    urls = admin_urls(world)
    superuser = role_user("superuser")
    client.force_login(superuser)
    forms = shown_forms(client, [url.path for url in urls])
    request = superuser_request(superuser)
    actions = [
        (f"/admin/{model._meta.app_label}/{model._meta.model_name}/", name, model_admin,
         list(model_admin.get_queryset(request).values_list("pk", flat=True)))
        for model, model_admin in admin.site._registry.items()
        for name in model_admin.get_actions(request)
    ]  # fmt: skip
    problems = []
    for role in ROLES:
        walk = Walk(client, world, role)
        client.force_login(walk.user)
        for url in urls:
            walk.request("get", url.path, model_admin=url.model_admin)
            for data in forms.get(url.path, [{}]):
                walk.request("post", url.path, data, model_admin=url.model_admin)
        for changelist, name, model_admin, rows in actions:
            data = {"action": name, "_selected_action": rows, "index": "0", "post": "yes"}
            walk.request("post", changelist, data, model_admin=model_admin)
        problems += walk.problems
    assert not problems, "\n".join(problems)
