"""Walk every URL Rally serves, from the URL resolver, so a new page is tried without a test.

- `served_urls()` lists every pattern with the view behind it;
- `admin_urls(world)` fills each admin pattern's parameters with a row of its ModelAdmin's model;
- `post_forms(html)` reads the forms of a page, as a browser would submit them;
- `Writes` tells what a request wrote to the database.
"""

import html
import re
from collections import defaultdict
from dataclasses import dataclass
from html.parser import HTMLParser

from django.apps import apps
from django.contrib import admin
from django.urls import URLPattern, URLResolver, get_resolver

_PARAMETER = re.compile(r"<(?:(\w+):)?(\w+)>|\(\?P<(\w+)>[^)]*\)")


@dataclass(frozen=True)
class ServedUrl:
    route: str  # the pattern as written, prefixes joined
    pattern: URLPattern
    names: tuple[str, ...]  # the namespaces and name, e.g. ("admin", "mailings_mailing_send")

    @property
    def name(self) -> str:
        return ":".join(name for name in self.names if name)

    @property
    def callback(self):
        return self.pattern.callback


def served_urls() -> list[ServedUrl]:
    """Return every URL pattern of the root URLconf, depth first, with its full route."""

    def walk(patterns, prefix: str, namespaces: tuple[str, ...]):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                namespace = (pattern.namespace,) if pattern.namespace else ()
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern),
                                namespaces + namespace)  # fmt: skip
            else:
                yield ServedUrl(prefix + str(pattern.pattern), pattern,
                                (*namespaces, pattern.name or ""))  # fmt: skip

    return list(walk(get_resolver().url_patterns, "", ()))


def route_path(route: str, values: dict[str, str]) -> str:
    """Turn a route (path() or regex) into a path, each parameter from `values` by name."""

    def fill(match):
        name = match[2] or match[3]
        return str(values[name])

    path = _PARAMETER.sub(fill, route)
    path = path.replace("^", "").replace("$", "").replace("(_mime)?", "")
    return "/" + path


def route_parameters(route: str) -> list[str]:
    return [match[2] or match[3] for match in _PARAMETER.finditer(route)]


@dataclass(frozen=True)
class AdminUrl:
    path: str
    name: str
    model_admin: admin.ModelAdmin | None


# The admin site's own pages, and what fills their parameters.
SITE_PAGE_VALUES = {"app_label": "mailings"}


def admin_urls(world) -> list[AdminUrl]:
    """Return every admin URL as a path, each ModelAdmin's with its parameters filled in.

    A pattern under a ModelAdmin takes the primary key of each row of its model in `world`
    (a proxy's, its concrete model's rows), so every page is opened for a real row; the site's
    own pages (index, login, app index, view on site, the catch-all) get values that exist too.
    """
    registry = {
        f"{model._meta.app_label}_{model._meta.model_name}": model_admin
        for model, model_admin in admin.site._registry.items()
    }
    urls = []
    for served in served_urls():
        if not served.route.startswith("admin/"):
            continue
        name = served.names[-1]
        prefix = next((key for key in registry if name.startswith(key + "_")), None)
        parameters = route_parameters(served.route)
        if prefix is None and not name:
            # The ModelAdmins' bare "<object_id>/" redirects and the site's catch-all.
            prefix = next((key for key in registry if f"/{key.replace('_', '/', 1)}/" in
                           "/" + served.route), None)  # fmt: skip
        model_admin = registry.get(prefix)
        if model_admin is None:
            values = _site_page_values(world)
            urls.append(AdminUrl(route_path(served.route, values), name, None))
            continue
        for instance in world_rows(world, model_admin.model):
            values = {parameter: instance.pk for parameter in parameters}
            urls.append(AdminUrl(route_path(served.route, values), name, model_admin))
            if not parameters:
                break
    return urls


def world_rows(world, model) -> list:
    concrete = model._meta.concrete_model
    rows = world.objects.get(model) or world.objects.get(concrete) or []
    if not rows:
        raise AssertionError(
            f"tests/security/world.py makes no {model.__name__}: add one, so that its admin "
            "pages are walked."
        )
    return rows


def _site_page_values(world) -> dict:
    from django.contrib.contenttypes.models import ContentType

    from supporters.models import Supporter

    supporter = world.objects[Supporter][0]
    return {
        **SITE_PAGE_VALUES,
        "content_type_id": ContentType.objects.get_for_model(Supporter).pk,
        "object_id": supporter.pk,
        "url": "no/such/page/",
    }


@dataclass
class Form:
    action: str | None
    fields: list[tuple[str, str]]


class _FormParser(HTMLParser):
    """Collect each POST form's fields as a browser submits them with its first submit button."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._submitted = False
        self._textarea: str | None = None
        self._select: str | None = None
        self._select_value: str | None = None
        self._select_first: str | None = None
        self._select_multiple = False
        self._text = ""

    def handle_starttag(self, tag, attrs):
        attrs = {key: value or "" for key, value in attrs}
        if tag == "form":
            if attrs.get("method", "get").lower() == "post":
                self._form = Form(attrs.get("action"), [])
                self._submitted = False
            return
        form = self._form
        if form is None:
            return
        name = attrs.get("name")
        if tag == "input" and name:
            kind = attrs.get("type", "text").lower()
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    form.fields.append((name, attrs.get("value", "on")))
            elif kind in ("submit", "image"):
                if not self._submitted:
                    form.fields.append((name, attrs.get("value", "")))
                    self._submitted = True
            elif kind not in ("file", "reset", "button"):
                form.fields.append((name, attrs.get("value", "")))
        elif tag == "button" and name and attrs.get("type", "submit") == "submit":
            if not self._submitted:
                form.fields.append((name, attrs.get("value", "")))
                self._submitted = True
        elif tag == "textarea" and name:
            self._textarea, self._text = name, ""
        elif tag == "select" and name:
            self._select, self._select_value, self._select_first = name, None, None
            self._select_multiple = "multiple" in attrs
        elif tag == "option" and self._select is not None:
            value = attrs.get("value", "")
            if self._select_first is None:
                self._select_first = value
            if "selected" in attrs:
                if self._select_multiple:
                    form.fields.append((self._select, value))
                else:
                    self._select_value = value

    def handle_data(self, data):
        if self._textarea is not None:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "form" and self._form is not None:
            self.forms.append(self._form)
            self._form = None
        elif tag == "textarea" and self._textarea is not None and self._form is not None:
            self._form.fields.append((self._textarea, self._text.removeprefix("\n")))
            self._textarea = None
        elif tag == "select" and self._select is not None and self._form is not None:
            if not self._select_multiple:
                value = self._select_value if self._select_value is not None else (
                    self._select_first or "")  # fmt: skip
                self._form.fields.append((self._select, value))
            self._select = None


def post_forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


def shown_forms(client, paths) -> dict[str, list[dict]]:
    """Open each page as `client`; return the POST forms it shows, by the path they post to,
    each as the browser would submit it (less its CSRF token)."""
    forms: dict[str, list[dict]] = {}
    for path in paths:
        response = client.get(path)
        if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
            continue
        for form in post_forms(response.content.decode()):
            action = html.unescape(form.action) if form.action else path
            action = action.split("?")[0] if action.startswith("/") else path
            fields = form_data(form.fields)
            fields.pop("csrfmiddlewaretoken", None)
            forms.setdefault(action, []).append(fields)
    return forms


def form_data(fields: list[tuple[str, str]]) -> dict[str, list[str]]:
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    return data


# Tables nobody's rights are about: the session changes with every login.
_UNWATCHED_TABLES = {"django_session"}
_WRITE = re.compile(r'\b(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?', re.IGNORECASE)
_KINDS = {"insert": "add", "update": "change", "delete": "delete"}


class Writes:
    """Record the tables each SQL statement writes, as (model, "add" | "change" | "delete").

    Read from the statements themselves, on PostgreSQL and SQLite alike: ORM writes, bulk
    UPDATEs and raw SQL all show. An UPDATE that matches no row counts too: a request that
    runs a write it had no right to is refused too late.
    """

    def __init__(self):
        self.found: set[tuple[type, str]] = set()
        self._models = {
            model._meta.db_table: model
            for model in apps.get_models(include_auto_created=True)
            if not model._meta.proxy
        }

    def __call__(self, execute, sql, params, many, context):
        for verb, table in _WRITE.findall(sql):
            # "ON CONFLICT DO UPDATE SET" and "FOR UPDATE OF" belong to a statement already seen.
            if table in _UNWATCHED_TABLES or table.upper() in ("SET", "OF"):
                continue
            model = self._models.get(table)
            kind = _KINDS[verb.split()[0].lower()]
            self.found.add((model if model is not None else table, kind))
        return execute(sql, params, many, context)


def public_urls(world) -> list[tuple[ServedUrl, str]]:
    """Return every URL outside the admin as a path, its parameters naming rows of `world`.

    A token parameter gets a valid token of the kind its view reads, so that the view goes
    past its token check to whatever it does.
    """
    from campaigns.links import make_confirmation_token
    from campaigns.models import Petition, Signature
    from mailings.content.tracked_links import make_click_token, make_open_token
    from mailings.models import Mailing
    from supporters.models import Supporter
    from supporters.tokens import make_unsubscribe_token

    supporter = world.objects[Supporter][0]
    mailing = world.objects[Mailing][-1]
    tokens = {
        "campaigns:petition_confirm": make_confirmation_token(
            signature_id=world.objects[Signature][0].pk
        ),
        "supporters:unsubscribe": make_unsubscribe_token(supporter.pk, mailing.pk),
        "supporters:preferences": make_unsubscribe_token(supporter.pk, mailing.pk),
        "mailings:click": make_click_token(
            mailing_id=mailing.pk, supporter_id=supporter.pk, link_index=0
        ),
        "mailings:open": make_open_token(mailing_id=mailing.pk, supporter_id=supporter.pk),
    }
    urls = []
    for served in served_urls():
        if served.route.startswith("admin/"):
            continue
        values = {"slug": world.objects[Petition][0].slug, "token": tokens.get(served.name, "x")}
        # The OSDI API's ids (api/urls.py); any other id, an API's too, gets "1".
        values = defaultdict(
            lambda: "1", values, person_id=supporter.uuid, tag_id=supporter.tags.first().pk
        )
        urls.append((served, route_path(served.route, values)))
    return urls
