"""Stored XSS: markup in any field comes out as text on every page that shows it.

Every text field of every model (supporters' names, tags, campaigns, petitions and their
translations, mailings' names, subjects and reasons, ESP events, import file names, error
messages, outbox messages, audit details) holds a payload; then every public page and every
admin page (walked from the URL resolver, as a superuser, who sees everything) is read, and
no payload may arrive as markup. Rich bodies go through the sanitiser on their way in, as the
admin forms save them, and must come out without script. CSV downloads hold formulas as text.
"""

import csv
import io
import re

import pytest
from django.core import mail

from campaigns.confirmation import signature_confirmation_email_send
from campaigns.links import make_petition_token
from tests.security.conftest import role_user
from tests.security.walk import admin_urls, public_urls, shown_forms
from tests.security.world import world_build

pytestmark = pytest.mark.django_db


def payload(label: str) -> str:
    return f'<script>xss("{label}")</script>"><img src=x onerror=xss("{label}")>'


# What a payload looks like if it came out as markup, not as text.
AS_MARKUP = re.compile(r"<script>xss\(|<img src=x onerror", re.IGNORECASE)
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def markup_in(text: str) -> list[str]:
    return [text[max(0, m.start() - 40) : m.end() + 30] for m in AS_MARKUP.finditer(text)]


def test_no_stored_payload_comes_out_as_markup_on_any_public_page(client):
    world = world_build(text=payload)
    token = make_petition_token(
        supporter_id=world.supporter.pk, mailing_id=None, petition_id=world.petition.pk
    )
    paths = [path for served, path in public_urls(world) if served.names[0] != "anymail"]
    found = {}
    for path in paths:
        for query in ({}, {"lang": "ru"}, {"t": token}):
            response = client.get(path, query)
            readable = response.status_code < 300 and "html" in response.get("Content-Type", "")
            if readable and (markup := markup_in(response.content.decode())):
                found[(path, tuple(query))] = markup
    assert not found
    # The pages were read with the payloads in them, escaped.
    page = client.get(f"/petitions/{world.petition.slug}/", {"t": token, "lang": "en"})
    page = page.content.decode()
    assert "&lt;script&gt;xss(&quot;petition&quot;)" in page
    assert "&lt;script&gt;xss(&quot;supporter&quot;)" in page  # the greeting of a personal link


def test_no_stored_payload_comes_out_as_markup_on_any_admin_page(client):
    world = world_build(text=payload)
    client.force_login(role_user("superuser"))
    found = {}
    read = 0
    for url in admin_urls(world):
        response = client.get(url.path)
        if response.status_code != 200 or response.streaming:
            continue
        if "html" not in response.get("Content-Type", ""):
            continue
        read += 1
        if markup := markup_in(response.content.decode()):
            found[url.path] = markup
    assert read > 50
    assert not found


def test_a_rich_body_saved_through_the_admin_loses_its_script(client):
    world = world_build()
    client.force_login(role_user("superuser"))
    path = f"/admin/campaigns/petition/{world.petition.pk}/change/"
    [form] = shown_forms(client, [path])[path]
    form["body"] = [
        '<p onclick="xss()">Free them</p><script>xss()</script><a href="javascript:xss()">x</a>'
        '<img src=x onerror="xss()"><iframe src="https://evil.example"></iframe>'
    ]
    assert client.post(path, form).status_code == 302
    world.petition.refresh_from_db()
    assert world.petition.body == '<p>Free them</p><a rel="noopener noreferrer">x</a><img src="x">'
    page = client.get(f"/petitions/{world.petition.slug}/").content.decode()
    assert "xss()" not in page


def test_the_confirmation_email_shows_names_and_titles_as_text(client):
    world = world_build(text=payload)
    world.signature.confirmed_at = None
    world.signature.save(update_fields=["confirmed_at"])
    assert signature_confirmation_email_send(signature_id=world.signature.pk)
    [message] = mail.outbox
    html = message.alternatives[0][0]
    assert not markup_in(html)
    assert "&lt;script&gt;" in html


def formula(label: str) -> str:
    return f'=HYPERLINK("https://evil.example/{label}","Click")'


def test_every_csv_download_holds_formulas_as_text(client):
    world = world_build(text=formula)
    client.force_login(role_user("superuser"))
    files = 0
    for url in admin_urls(world):
        response = client.get(url.path)
        if response.status_code != 200 or "text/csv" not in response.get("Content-Type", ""):
            continue
        files += 1
        content = b"".join(response.streaming_content) if response.streaming else response.content
        for row in csv.reader(io.StringIO(content.decode("utf-8-sig"))):
            for cell in row:
                assert not cell.startswith(FORMULA_TRIGGERS), (url.path, cell)
    assert files >= 3  # supporters, a petition's signers, an import's rejected rows
