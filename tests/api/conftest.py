"""The API through real HTTP: a live server, and clients holding a token of each scope."""

from dataclasses import dataclass

import pytest
import requests
from django.core.cache import cache

from api.auth import forget_tokens
from api.services.tokens import api_token_create
from supporters.models import ConsentRecord, Supporter, Tag

TOKEN_HEADER = "OSDI-API-Token"


@dataclass
class Osdi:
    """A client of the API at `root` (e.g. http://localhost:1234/api/osdi/v1) with a token."""

    root: str
    secret: str | None
    token_name: str = ""

    def url(self, path: str) -> str:
        """Return an absolute URL: `path` as it is if absolute, else under the root."""
        if path.startswith("http"):
            return path
        return f"{self.root}/{path.lstrip('/')}" if path else self.root

    def request(self, method: str, path: str, *, body=None, data=None, headers=None):
        all_headers = {TOKEN_HEADER: self.secret} if self.secret is not None else {}
        all_headers.update(headers or {})
        return requests.request(
            method,
            self.url(path),
            json=body,
            data=data,
            headers=all_headers,
            timeout=30,
            allow_redirects=False,
        )

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body=None, **kwargs):
        return self.request("POST", path, body=body, **kwargs)

    def put(self, path: str, body=None, **kwargs):
        return self.request("PUT", path, body=body, **kwargs)

    def delete(self, path: str, **kwargs):
        return self.request("DELETE", path, **kwargs)


@pytest.fixture(autouse=True)
def _tokens_and_counts_forgotten():
    # A token id is reused on SQLite after a flush, and a collection's count is reused for a
    # while (api/hal.py): what one test's process read must not answer for another's.
    forget_tokens()
    cache.clear()
    yield
    forget_tokens()
    cache.clear()


@pytest.fixture
def osdi(live_server):
    """Return a factory: osdi("write") is a client with a new token of that scope."""
    made = []

    def make(scope: str = "write", *, name: str | None = None) -> Osdi:
        name = name or f"{scope} integration {len(made) + 1}"
        issued = api_token_create(name=name, scope=scope)
        client = Osdi(root=f"{live_server.url}/api/osdi/v1", secret=issued.secret, token_name=name)
        made.append(client)
        return client

    return make


def stored_counts() -> dict:
    """Count the rows an API write could touch, to show a refused request wrote nothing."""
    return {
        "supporters": Supporter.objects.count(),
        "tags": Tag.objects.count(),
        "taggings": Supporter.tags.through.objects.count(),
        "consents": ConsentRecord.objects.count(),
        "modified": list(
            Supporter.objects.order_by("pk").values_list("pk", "updated_at", "status")
        ),
    }


def signup_body(email: str, **person) -> dict:
    """Return a person signup helper body for this address, with more person fields."""
    return {"person": {"email_addresses": [{"address": email}], **person}}
