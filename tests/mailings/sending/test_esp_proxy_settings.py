"""A batch's ESP session, which reads proxy settings once, goes through the proxies requests would.

`_open` copies the environment's proxies into the session and turns `trust_env` off, relying
on how requests merges them (`Session.merge_environment_settings`); these tests fail when
requests stops honouring `session.proxies` or `trust_env` that way.
"""

import pytest
import requests
from django.core.mail import get_connection

from mailings.sending.batches import _open

API_URL = "http://127.0.0.1:9/"  # never contacted: nothing is sent
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture
def proxy_environment(monkeypatch):
    """Start from no proxy variables at all, then set what a test names."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    for name in CA_BUNDLE_VARIABLES:
        monkeypatch.delenv(name, raising=False)

    def set_variables(**variables):
        for name, value in variables.items():
            monkeypatch.setenv(name, value)

    return set_variables


def _proxies(session: requests.Session, url: str) -> dict:
    return dict(session.merge_environment_settings(url, {}, None, None, None)["proxies"])


def _batch_session() -> requests.Session:
    connection = get_connection(
        "anymail.backends.postmark.EmailBackend", server_token="test-token", api_url=API_URL
    )
    _open(connection)
    session = connection.session
    # The trick did run: the session no longer reads the environment itself.
    assert session.trust_env is False
    return session


PROXY = "http://proxy.invalid:3128"


@pytest.mark.parametrize(
    ("variables", "http_proxy"),
    [
        ({"HTTPS_PROXY": PROXY, "HTTP_PROXY": PROXY}, PROXY),
        ({"HTTP_PROXY": PROXY, "NO_PROXY": "mail.example.org"}, PROXY),
        ({"HTTP_PROXY": PROXY, "NO_PROXY": "127.0.0.1"}, None),
        ({}, None),
    ],
    ids=["proxied", "proxied-despite-no-proxy", "bypassed-by-no-proxy", "no-proxy-set"],
)
def test_the_batch_session_resolves_the_proxies_a_default_session_resolves(
    proxy_environment, variables, http_proxy
):
    proxy_environment(**variables)
    batch = _batch_session()
    expected = _proxies(requests.Session(), API_URL)
    assert expected.get("http") == http_proxy  # the environment is what the test set
    assert _proxies(batch, API_URL) == expected
    batch.close()


def test_the_batch_session_ignores_proxy_variables_set_after_it_opened(proxy_environment):
    proxy_environment(HTTP_PROXY=PROXY)
    batch = _batch_session()
    proxy_environment(HTTP_PROXY="http://other-proxy.invalid:8080")
    # Read once per batch, by design: a batch lasts seconds, and a worker's environment is set
    # at start-up.
    assert _proxies(batch, API_URL)["http"] == PROXY
    batch.close()


@pytest.mark.parametrize("variable", CA_BUNDLE_VARIABLES)
def test_the_batch_session_verifies_with_the_ca_bundle_a_default_session_uses(
    proxy_environment, variable, tmp_path
):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")  # requests only names the file until it connects
    proxy_environment(**{variable: str(bundle)})
    batch = _batch_session()
    expected = requests.Session().merge_environment_settings(API_URL, {}, None, None, None)
    assert expected["verify"] == str(bundle)
    assert batch.merge_environment_settings(API_URL, {}, None, None, None)["verify"] == str(bundle)
    batch.close()
