"""Security headers on every page, and a production process that is safe or does not start.

The pages are fetched through the real middleware (django-csp's Content-Security-Policy,
Django's X-Frame-Options). The production settings are loaded in a child process, as a server
would load them, with exactly the environment each test gives it.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from campaigns.models import Signature
from supporters.tokens import make_unsubscribe_token
from tests.campaigns.test_sign import VALID
from tests.factories import MailingFactory, PetitionFactory, SupporterFactory

ROOT = Path(__file__).resolve().parent.parent.parent

# What a server is given: each required variable with a value that passes check --deploy.
PRODUCTION_ENVIRONMENT = {
    "SECRET_KEY": "tXz8Qe2vLr5Nw9Bk3Hy7Jd1Fp6Gs4Mc0Va-Ui_Oo8Pq2Wn5Er7Ty3Zx9Lk1",
    "RALLY_SENDERS": '[{"name": "Appeals", "email": "appeals@ngo.example", "reply_to": ""}]',
    "RALLY_ORGANISATION_NAME": "Human Rights Now",
    "RALLY_ORGANISATION_ADDRESS": "2 Real Road, Manchester M1 1AA, United Kingdom",
    "ANYMAIL_WEBHOOK_SECRET": "esp-hooks:a-long-random-webhook-password",
    "RALLY_SUPPRESSION_HASH_KEY": "a-second-long-random-key-for-the-erased-address-list",
}
# Set in the test run's own environment, perhaps: a server's process would not inherit them.
_INHERITED_SETTINGS = re.compile(r"^(DJANGO_|RALLY_|SECRET_KEY$|ANYMAIL|DATABASE_URL$)")


def run_with_production_settings(args: list[str], **environment: str):
    """Run `python <args>` in the checkout with DJANGO_SETTINGS_MODULE=production settings."""
    env = {name: value for name, value in os.environ.items() if not _INHERITED_SETTINGS.match(name)}
    env |= {"DJANGO_SETTINGS_MODULE": "config.settings.production", **environment}
    return subprocess.run(  # noqa: S603 -- our own interpreter, fixed arguments
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def policy(response) -> dict[str, list[str]]:
    """Return the response's Content-Security-Policy as {directive: [sources]}."""
    header = response.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    directives = {}
    for part in header.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


def inline_scripts_and_styles(html: str) -> list[str]:
    """Return the <script> elements without src (JSON data blocks aside) and <style> elements."""
    scripts = [
        tag
        for tag in re.findall(r"<script\b[^>]*>", html)
        if "src=" not in tag and 'type="application/json"' not in tag
    ]
    return scripts + re.findall(r"<style\b[^>]*>", html)


# --- Content-Security-Policy on the public pages --------------------------------------------------


def public_pages(client) -> dict[str, object]:
    """Fetch each public page a supporter sees, as a supporter would reach it."""
    petition = PetitionFactory(requires_confirmation=True)
    supporter = SupporterFactory()
    signed = client.post(f"/petitions/{petition.slug}/", VALID)
    embed_signed = client.post(f"/petitions/{petition.slug}/embed/", VALID)
    return {
        "petition list": client.get("/petitions/"),
        "sign page": client.get(f"/petitions/{petition.slug}/"),
        "thanks": client.get(signed["Location"]),
        "embed": client.get(f"/petitions/{petition.slug}/embed/"),
        "embed thanks": client.get(embed_signed["Location"]),
        "unsubscribe": client.get(f"/unsubscribe/{make_unsubscribe_token(supporter.pk)}/"),
    }


@pytest.mark.django_db
def test_every_public_page_runs_only_our_own_scripts_and_style_sheets(client):
    for name, response in public_pages(client).items():
        assert response.status_code == 200, name
        directives = policy(response)
        # No inline script and no inline <style> may run, and nothing from another origin.
        assert directives["default-src"] == ["'self'"], name
        assert directives["script-src"] == ["'self'"], name
        assert directives["style-src"] == ["'self'"], name
        assert directives["object-src"] == ["'none'"], name
        assert directives["base-uri"] == ["'none'"], name
        assert directives["form-action"] == ["'self'"], name
        # So the page must need none: it would break under its own policy.
        assert inline_scripts_and_styles(response.content.decode()) == [], name


def test_a_captcha_provider_is_the_only_other_origin_a_page_may_load_scripts_from():
    # The policy is built from the provider when the settings load, as a server's would be.
    result = run_with_production_settings(
        ["-c", "from django.conf import settings; import django; django.setup();"
         "print(settings.CONTENT_SECURITY_POLICY['DIRECTIVES']['script-src'])"],
        **PRODUCTION_ENVIRONMENT,
        RALLY_CAPTCHA_PROVIDER="turnstile",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "https://challenges.cloudflare.com" in result.stdout
    assert "'unsafe-inline'" not in result.stdout


# --- Framing --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_only_the_embed_form_and_the_pages_it_leads_to_may_be_framed(client):
    pages = public_pages(client)
    for name in ("embed", "embed thanks"):
        assert policy(pages[name])["frame-ancestors"] == ["*"], name
        assert "X-Frame-Options" not in pages[name], name
    for name in ("petition list", "sign page", "thanks", "unsubscribe"):
        assert policy(pages[name])["frame-ancestors"] == ["'none'"], name
        assert pages[name]["X-Frame-Options"] == "DENY", name


@pytest.mark.django_db
def test_the_site_thanks_page_is_not_framable_whatever_its_query_says(client):
    petition = PetitionFactory()
    response = client.get(f"/petitions/{petition.slug}/thanks/?embed=1")
    assert policy(response)["frame-ancestors"] == ["'none'"]
    assert response["X-Frame-Options"] == "DENY"


@pytest.mark.django_db
def test_the_embedded_form_lands_on_the_framable_thanks_page_and_the_site_form_does_not(client):
    petition = PetitionFactory(requires_confirmation=True)
    from_embed = client.post(f"/petitions/{petition.slug}/embed/", VALID)
    assert from_embed["Location"] == f"/petitions/{petition.slug}/embed/thanks/?confirm=1"
    from_site = client.post(f"/petitions/{petition.slug}/", {**VALID, "email": "b@example.org"})
    assert from_site["Location"] == f"/petitions/{petition.slug}/thanks/?confirm=1"
    assert Signature.objects.count() == 2
    # Asking for the confirmation email again, inside the frame, stays in the frame.
    page = client.get(from_embed["Location"]).content.decode()
    assert f'action="/petitions/{petition.slug}/embed/confirm-again/"' in page
    again = client.post(
        f"/petitions/{petition.slug}/embed/confirm-again/", {"email": VALID["email"]}
    )
    assert again.status_code == 200 and "X-Frame-Options" not in again
    assert policy(again)["frame-ancestors"] == ["*"]
    site_again = client.post(
        f"/petitions/{petition.slug}/confirm-again/", {"email": VALID["email"]}
    )
    assert site_again["X-Frame-Options"] == "DENY"


@pytest.mark.django_db
def test_the_sites_allowed_to_frame_the_embed_form_are_a_setting(client, settings):
    settings.RALLY_EMBED_FRAME_ANCESTORS = [
        "https://campaign.example.org",
        "https://partner.example",
    ]
    petition = PetitionFactory()
    response = client.get(f"/petitions/{petition.slug}/embed/")
    assert policy(response)["frame-ancestors"] == [
        "https://campaign.example.org",
        "https://partner.example",
    ]


# --- The admin ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_admin_is_never_framed_and_runs_an_inline_script_only_with_the_pages_nonce(client):
    login = client.get("/admin/login/")
    assert policy(login)["frame-ancestors"] == ["'none'"]
    assert login["X-Frame-Options"] == "DENY"
    client.force_login(User.objects.create_superuser("admin", "admin@ngo.example", "x"))
    mailing = MailingFactory()
    response = client.get(f"/admin/mailings/mailing/{mailing.pk}/change/")
    assert response.status_code == 200
    directives = policy(response)
    assert "'unsafe-inline'" not in directives["script-src"]
    assert directives["frame-ancestors"] == ["'none'"]
    # The body editor's import map is the page's one inline script; it carries the nonce.
    nonces = [s for s in directives["script-src"] if s.startswith("'nonce-")]
    assert len(nonces) == 1
    nonce = nonces[0][len("'nonce-") : -1]
    inline = [
        tag for tag in inline_scripts_and_styles(response.content.decode()) if "<script" in tag
    ]
    assert inline and all(f'nonce="{nonce}"' in tag for tag in inline)


# --- Production settings --------------------------------------------------------------------------


def test_check_deploy_with_the_production_settings_is_clean():
    result = run_with_production_settings(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **PRODUCTION_ENVIRONMENT
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_redirects_plain_http_to_https_and_sends_hsts_over_https():
    script = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "plain = Client().get('/petitions/')\n"
        "print(plain.status_code, plain['Location'])\n"
        "secure = Client().get('/nowhere/', headers={'X-Forwarded-Proto': 'https'})\n"
        "print(secure['Strict-Transport-Security'])\n"
    )
    result = run_with_production_settings(
        ["-c", script], **PRODUCTION_ENVIRONMENT, DJANGO_ALLOWED_HOSTS="testserver"
    )
    assert result.returncode == 0, result.stderr
    redirect, hsts = result.stdout.splitlines()
    assert redirect == "301 https://testserver/petitions/"
    assert hsts == "max-age=31536000; includeSubDomains; preload"


@pytest.mark.parametrize("missing", sorted(PRODUCTION_ENVIRONMENT))
def test_production_refuses_to_start_without_each_required_variable(missing):
    environment = {name: v for name, v in PRODUCTION_ENVIRONMENT.items() if name != missing}
    result = run_with_production_settings(["-c", "import django; django.setup()"], **environment)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and missing in result.stderr


def test_production_names_every_missing_variable_at_once():
    result = run_with_production_settings(
        ["-c", "import django; django.setup()"], RALLY_ORGANISATION_NAME=" "
    )
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured")
    for name in PRODUCTION_ENVIRONMENT:
        assert name in last_line


# --- The image and the compose stack --------------------------------------------------------------


def test_the_image_runs_the_production_settings_unless_told_otherwise():
    dockerfile = (ROOT / "Dockerfile").read_text()
    env_lines = [line for line in dockerfile.splitlines() if line.startswith("ENV ")]
    assert any("DJANGO_SETTINGS_MODULE=config.settings.production" in line for line in env_lines)


def test_the_compose_stack_gives_its_processes_every_variable_production_requires():
    # CI checks the file's validity with Compose itself (`docker-compose config -q`, .ci/run);
    # this checks what that cannot: that its processes would start with the production settings.
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "DJANGO_SETTINGS_MODULE: config.settings.production" in compose
    for name in PRODUCTION_ENVIRONMENT:
        assert re.search(rf"^\s+{name}: \S", compose, re.MULTILINE), name
