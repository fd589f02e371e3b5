"""Bad input to every URL Rally serves: a 4xx, never a 500.

Every pattern of the URL resolver (public pages, the admin as a superuser, each ESP's webhook
URLs whether that ESP is configured or not) gets wrong methods, garbage and huge bodies, a body
that is not UTF-8, and path parameters that are nonsense, out of range or far too long.
"""

import re

import pytest
from django.test import Client

from tests.security.conftest import role_user
from tests.security.walk import admin_urls, public_urls, route_parameters, route_path
from tests.security.world import world_build

pytestmark = pytest.mark.django_db

FORM = "application/x-www-form-urlencoded"
BAD_BODIES = [
    ("not UTF-8", b"first_name=%FF%FEAnn&email=a%C0%AF%40example.org", FORM),
    ("raw bytes", b"\xff\xfe\x00garbage\x80", FORM),
    ("broken JSON", b'{"RecordType": "Bounce", "MessageID": ', "application/json"),
    ("JSON of the wrong shape", b'[1, "two", null, {"event": []}]', "application/json"),
    ("too big", b"x=" + b"a" * (3 * 1024 * 1024), FORM),
    ("too many fields", b"&".join(b"f%d=1" % n for n in range(1500)), FORM),
    ("multipart without a boundary", b"--x\r\n\r\n", "multipart/form-data"),
]
METHODS = ["put", "patch", "delete", "options", "trace"]
# Nonsense for each converter, each still matching it, so that the view itself is reached.
BAD_VALUES = {
    "int": ["0", "9" * 20],
    "slug": ["no-such-thing", "a" * 400],
    "str": ["x", "%FF%FE", "a" * 5000, "1:2:3", "%E2%80%AE", "..", "%00"],
    "path": ["x", "a" * 5000, "1/2/3", "%00", "%FF"],
    None: ["x", "%00", "a" * 5000],
}
_CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>|\(\?P<(\w+)>")


def every_path(world):
    """Yield (who, path, route) for every URL: the admin's as a superuser, the rest anonymous."""
    seen = set()
    for url in admin_urls(world):
        if url.name not in seen or not url.name:
            seen.add(url.name)
            yield "superuser", url.path, None
    for served, path in public_urls(world):
        yield "anonymous", path, served.route


def bad_parameter_paths(world):
    """Yield paths whose parameters are each in turn nonsense of their converter's kind."""
    from tests.security.walk import served_urls

    good = {
        "slug": world.petition.slug, "token": "x", "object_id": world.supporter.pk,
        "content_type_id": 1, "url": "x", "app_label": "mailings",
    }  # fmt: skip
    for served in served_urls():
        converters = {
            (match[2] or match[3]): match[1] for match in _CONVERTER.finditer(served.route)
        }
        for name in route_parameters(served.route):
            for value in BAD_VALUES.get(converters.get(name), BAD_VALUES[None]):
                values = {parameter: good.get(parameter, world.supporter.pk)
                          for parameter in converters}  # fmt: skip
                values[name] = value
                yield served, route_path(served.route, values)


def clients():
    # An exception is a 500, as a browser would get it; every one is listed, not just the first.
    anonymous = Client(raise_request_exception=False)
    superuser = Client(raise_request_exception=False)
    superuser.force_login(role_user("superuser"))
    return {"anonymous": anonymous, "superuser": superuser}


def test_wrong_methods_and_bad_bodies_never_get_a_500_anywhere():
    world = world_build()
    by = clients()
    failures = []
    for who, path, _ in every_path(world):
        client = by[who]
        for method in METHODS:
            status = getattr(client, method)(path).status_code
            if status >= 500:
                failures.append(f"{who} {method.upper()} {path}: {status}")
        for label, body, content_type in BAD_BODIES:
            status = client.post(path, body, content_type=content_type).status_code
            if status >= 500:
                failures.append(f"{who} POST {label} {path}: {status}")
    assert not failures, "\n".join(failures)


def test_nonsense_path_parameters_never_get_a_500():
    world = world_build()
    by = clients()
    failures = []
    for served, path in bad_parameter_paths(world):
        client = by["superuser" if served.route.startswith("admin/") else "anonymous"]
        for method in ("get", "post"):
            status = getattr(client, method)(path).status_code
            if status >= 500:
                failures.append(f"{method.upper()} {path[:120]}: {status}")
    assert not failures, "\n".join(failures)


def test_each_esp_webhook_url_answers_4xx_to_a_bad_post_configured_or_not():
    webhooks = [path for served, path in public_urls(world_build()) if served.names[0] == "anymail"]
    assert len(webhooks) > 20
    failures = []
    for credentials in ({}, {"HTTP_AUTHORIZATION": "Basic cmFsbHktd2ViaG9va3M6dGVzdC1zZWNyZXQ="}):
        client = Client(raise_request_exception=False, **credentials)
        for path in webhooks:
            for label, body, content_type in [("empty", b"", "application/json"), *BAD_BODIES]:
                response = client.post(path, body, content_type=content_type)
                if not 400 <= response.status_code < 500:
                    failures.append(f"{label} {path} {bool(credentials)}: {response.status_code}")
    assert not failures, "\n".join(failures)
