"""Tracked links, the open pixel and attribution: rewriting, the redirect, and what is recorded."""

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.core import mail

from campaigns.links import read_petition_token
from campaigns.models import Signature
from mailings.content.rendering import (
    CompiledMailing,
    build_message,
    compiled_mailing,
    supporter_merge_fields,
)
from mailings.content.tracked_links import (
    make_click_token,
    make_open_token,
    read_click_token,
    read_open_token,
)
from mailings.links.views import PIXEL_GIF
from mailings.models import Delivery, LinkClick, Mailing, MailingVersion
from mailings.sending import delivery_snapshot, mailing_send, mailing_send_batch
from supporters.models import Supporter
from tests.factories import MailingFactory, PetitionFactory, SupporterFactory

pytestmark = pytest.mark.django_db

HREF = re.compile(r'href="([^"]*)"')
SRC = re.compile(r'<img src="([^"]*)"')


def petition_page_url(petition) -> str:
    return f"{settings.SITE_URL}/petitions/{petition.slug}/"


@pytest.fixture
def mailing():
    petition = PetitionFactory(slug="free-them")
    return MailingFactory(
        petition=petition,
        campaign=petition.campaign,
        html_body=(
            '<p>Dear {{ first_name|default:"friend" }},</p>'
            '<p><a href="{{ petition_url }}">Sign</a></p>'
            '<p><a href="https://news.example.org/story?a=1&amp;b=2">Read</a></p>'
            '<p><a href="https://donate.example.org/?name='
            '{{ first_name|default:"friend"|urlencode }}">Give</a></p>'
            '<p><a href="' + petition_page_url(petition) + '">The petition page</a></p>'
            '<p><a href="mailto:office@ngo.example">Write to us</a></p>'
            '<p><a href="https://news.example.org/story?a=1&amp;b=2">Read again</a></p>'
            '<p><a href="{{ unsubscribe_url }}">Stop these emails</a></p>'
        ),
        text_body=(
            "Sign: {{ petition_url }}\n"
            "Read: https://news.example.org/story?a=1&b=2.\n"
            "More (https://text-only.example.org/more).\n"
        ),
    )


@pytest.fixture
def supporter():
    return SupporterFactory(email="olga@example.org", first_name="Olga")


def bulk_message(mailing, supporter, *, tracked=True, version=""):
    compiled = compiled_mailing(mailing)
    return build_message(
        compiled=compiled,
        fields=supporter_merge_fields(compiled, supporter),
        delivery_id=1,
        version=version,
        tracked_supporter_id=supporter.pk if tracked else None,
    )


def html_of(message) -> str:
    return message.alternatives[0][0]


def hrefs(message) -> list[str]:
    return [html.unescape(href) for href in HREF.findall(html_of(message))]


def path_of(url: str) -> str:
    assert url.startswith(settings.SITE_URL)
    return url[len(settings.SITE_URL) :]


def deliver(mailing, supporter) -> Delivery:
    return Delivery.objects.create(
        mailing=mailing, supporter=supporter, status=Delivery.Status.SENT
    )


# --- Rewriting -----------------------------------------------------------------------------


def test_bulk_links_go_through_the_redirect_but_unsubscribe_and_mailto_do_not(mailing, supporter):
    message = bulk_message(mailing, supporter)
    links = hrefs(message)
    redirect = f"{settings.SITE_URL}/r/"
    tracked = [link for link in links if link.startswith(redirect)]
    # Sign, Read, Give, the petition page, Read again; not mailto, not the two unsubscribes.
    assert len(tracked) == 5
    assert "mailto:office@ngo.example" in links
    unsubscribes = [link for link in links if "/unsubscribe/" in link]
    assert len(unsubscribes) == 2  # the body's own and the layout's footer
    assert not any(u.startswith(redirect) for u in unsubscribes)
    assert not any("news.example.org" in link or "t=" in link for link in tracked)
    # The same URL twice is one link of the list.
    assert tracked[1] == tracked[4]
    # The plain text's URLs too, the sentence's full stop and the bracket left outside.
    assert "news.example.org" not in message.body and "text-only" not in message.body
    assert re.search(r"More \(http://\S+/r/[^/\s]+/\)\.", message.body)
    assert "/unsubscribe/" in message.body


def test_link_tokens_name_mailing_supporter_and_index_in_a_stable_order(mailing, supporter):
    compiled = compiled_mailing(mailing)
    sources = [link.source for link in compiled.links.links]
    assert sources == [
        "{{ petition_url }}",
        "https://news.example.org/story?a=1&b=2",
        'https://donate.example.org/?name={{ first_name|default:"friend"|urlencode }}',
        petition_page_url(mailing.petition),
        "https://text-only.example.org/more",
    ]
    # A second compile (another worker, the redirect) numbers them the same.
    assert [link.source for link in CompiledMailing(mailing).links.links] == sources
    links = [link for link in hrefs(bulk_message(mailing, supporter)) if "/r/" in link]
    tokens = [urlsplit(link).path.split("/")[2] for link in links]
    named = [read_click_token(token) for token in tokens]
    assert [(n.mailing_id, n.supporter_id) for n in named] == [(mailing.pk, supporter.pk)] * 5
    assert [n.link_index for n in named] == [0, 1, 2, 3, 1]
    assert all(len(token) < 70 for token in tokens)


def test_language_versions_share_the_list_and_add_their_own_links(mailing, supporter):
    MailingVersion.objects.create(
        mailing=mailing,
        language="ru",
        subject="Подпишите",
        html_body='<p><a href="https://news.example.org/story?a=1&amp;b=2">Читать</a> '
        '<a href="https://ru.example.org/">RU</a></p>',
    )
    mailing.save()  # as the admin does: the compiled form follows updated_at
    compiled = compiled_mailing(mailing)
    assert compiled.links.links[5].source == "https://ru.example.org/"
    message = bulk_message(mailing, supporter, version="ru")
    indexes = [
        read_click_token(urlsplit(link).path.split("/")[2]).link_index
        for link in hrefs(message)
        if "/r/" in link
    ]
    assert indexes == [1, 5]


def test_previews_and_test_copies_keep_the_links_as_written_and_have_no_pixel(mailing, supporter):
    message = bulk_message(mailing, supporter, tracked=False)
    links = hrefs(message)
    assert not any("/r/" in link for link in links)
    assert "https://news.example.org/story?a=1&b=2" in links
    assert "https://donate.example.org/?name=Olga" in links
    assert read_petition_token(parse_qs(urlsplit(links[0]).query)["t"][0]).supporter_id == (
        supporter.pk
    )
    assert "/o/" not in html_of(message) and "<img" not in html_of(message)
    assert "https://text-only.example.org/more" in message.body


def test_the_bulk_send_itself_tracks_links_and_adds_one_pixel(django_capture_on_commit_callbacks):
    supporter = SupporterFactory(first_name="Ann")
    mailing = MailingFactory()
    with django_capture_on_commit_callbacks(execute=False):
        mailing_send(mailing=mailing)
    delivery_snapshot(mailing_id=mailing.pk)
    while mailing_send_batch(mailing_id=mailing.pk, worker="w").more:
        pass
    (message,) = mail.outbox
    body = html_of(message)
    assert "/r/" in body and "/r/" in message.body
    (pixel,) = SRC.findall(body)
    opened = read_open_token(path_of(pixel).removeprefix("/o/").removesuffix(".gif"))
    assert (opened.mailing_id, opened.supporter_id) == (mailing.pk, supporter.pk)
    assert body.index(pixel) > body.index("Unsubscribe")  # at the end, after the footer


# --- The redirect ----------------------------------------------------------------------------


def follow(client, mailing, supporter, index, **query):
    token = make_click_token(mailing_id=mailing.pk, supporter_id=supporter.pk, link_index=index)
    return client.get(f"/r/{token}/", query)


def test_a_click_redirects_to_the_link_rendered_for_the_supporter_and_is_recorded(
    client, mailing, supporter
):
    delivery = deliver(mailing, supporter)
    response = follow(client, mailing, supporter, 2)
    assert response.status_code == 302
    assert response["Location"] == "https://donate.example.org/?name=Olga"
    assert "no-store" in response["Cache-Control"]
    click = LinkClick.objects.get()
    assert (click.mailing, click.supporter, click.link_index) == (mailing, supporter, 2)
    assert click.url == "https://donate.example.org/?name=Olga"
    delivery.refresh_from_db()
    first_click = delivery.clicked_at
    assert first_click is not None and delivery.opened_at == first_click

    follow(client, mailing, supporter, 1)
    delivery.refresh_from_db()
    assert delivery.clicked_at == first_click  # the first click keeps its time
    assert LinkClick.objects.count() == 2


def test_the_redirect_never_follows_a_url_from_the_request(client, mailing, supporter):
    for query in ({"url": "https://evil.example"}, {"next": "https://evil.example"}):
        response = follow(client, mailing, supporter, 1, **query)
        assert response["Location"] == "https://news.example.org/story?a=1&b=2"


def invalid_click_responses(client, mailing, supporter):
    """Every kind of click token that must lead nowhere, each fetched once."""
    good = make_click_token(mailing_id=mailing.pk, supporter_id=supporter.pk, link_index=1)
    value, timestamp, signature = good.split(":")
    other_mailing = MailingFactory()
    yield "tampered signature", client.get(f"/r/{value}:{timestamp}:{signature[:-2]}xx/")
    yield "tampered value", client.get(f"/r/{value[:-1]}2:{timestamp}:{signature}/")
    yield "cut short", client.get(f"/r/{good[:20]}/")
    yield "index past the list", follow(client, mailing, supporter, 99)
    yield (
        "an open token",
        client.get(f"/r/{make_open_token(mailing_id=mailing.pk, supporter_id=supporter.pk)}/"),
    )
    yield (
        "no such supporter",
        client.get(
            f"/r/{make_click_token(mailing_id=mailing.pk, supporter_id=10**9, link_index=1)}/"
        ),
    )
    deleted = make_click_token(mailing_id=other_mailing.pk, supporter_id=supporter.pk, link_index=0)
    other_mailing.delete()
    yield "deleted mailing", client.get(f"/r/{deleted}/")
    yield "garbage", client.get("/r/%00%ff<script>/")
    yield "long garbage", client.get("/r/" + "a:" * 3000 + "/")


def test_bad_click_tokens_get_one_neutral_page_and_record_nothing(client, mailing, supporter):
    pages = set()
    for case, response in invalid_click_responses(client, mailing, supporter):
        assert response.status_code == 404, case
        assert "Location" not in response, case
        content = response.content.decode()
        assert "olga" not in content.lower() and "This link is not recognised" in content, case
        # The page's language links lead back to the address asked for; the rest is one page.
        pages.add(re.sub(r'<nav class="languages".*?</nav>', "", content, flags=re.DOTALL))
    assert len(pages) == 1  # the same page, whatever went wrong
    assert not LinkClick.objects.exists()


def test_an_expired_click_token_gets_the_neutral_page(client, mailing, supporter, settings):
    settings.RALLY_TRACKING_TOKEN_MAX_AGE_DAYS = -1  # every token is past its age
    response = follow(client, mailing, supporter, 1)
    assert (
        response.status_code == 404 and "This link is not recognised" in response.content.decode()
    )
    assert not LinkClick.objects.exists()


def test_an_erased_supporter_click_gets_the_neutral_page(client, mailing, supporter):
    deliver(mailing, supporter)
    Supporter.objects.filter(pk=supporter.pk).update(status=Supporter.Status.ERASED)
    response = follow(client, mailing, supporter, 1)
    assert response.status_code == 404 and not LinkClick.objects.exists()


def test_a_head_request_redirects_but_records_nothing_and_other_methods_are_refused(
    client, mailing, supporter
):
    token = make_click_token(mailing_id=mailing.pk, supporter_id=supporter.pk, link_index=1)
    response = client.head(f"/r/{token}/")
    assert response.status_code == 302 and not LinkClick.objects.exists()
    assert client.post(f"/r/{token}/").status_code == 405
    assert not LinkClick.objects.exists()


def test_a_link_that_renders_to_no_web_address_leads_nowhere(client, supporter):
    mailing = MailingFactory(
        petition=None, html_body='<p><a href="{{ petition_url }}">Sign</a></p>'
    )
    assert follow(client, mailing, supporter, 0).status_code == 404


# --- The open pixel ---------------------------------------------------------------------------


def test_the_pixel_counts_the_first_open_only_and_is_never_cached(client, mailing, supporter):
    delivery = deliver(mailing, supporter)
    url = f"/o/{make_open_token(mailing_id=mailing.pk, supporter_id=supporter.pk)}.gif"
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    assert response.content == PIXEL_GIF
    assert "no-store" in response["Cache-Control"] and "no-cache" in response["Cache-Control"]
    delivery.refresh_from_db()
    first_open = delivery.opened_at
    assert first_open is not None
    client.get(url)
    delivery.refresh_from_db()
    assert delivery.opened_at == first_open


def test_a_bad_pixel_token_gets_the_same_gif_and_changes_nothing(client, mailing, supporter):
    delivery = deliver(mailing, supporter)
    good = make_open_token(mailing_id=mailing.pk, supporter_id=supporter.pk)
    click = make_click_token(mailing_id=mailing.pk, supporter_id=supporter.pk, link_index=0)
    for token in (good[:-2] + "xx", click, "garbage", "%00"):
        response = client.get(f"/o/{token}.gif")
        assert response.status_code == 200 and response.content == PIXEL_GIF
    assert client.head(f"/o/{good}.gif").status_code == 200
    delivery.refresh_from_db()
    assert delivery.opened_at is None


# --- Attribution ------------------------------------------------------------------------------


@pytest.mark.parametrize("index", [0, 3], ids=["petition_url merge field", "plain page link"])
def test_a_signature_after_a_tracked_click_is_credited_to_the_mailing(
    client, mailing, supporter, index, django_capture_on_commit_callbacks
):
    deliver(mailing, supporter)
    link = [href for href in hrefs(bulk_message(mailing, supporter)) if "/r/" in href][index]

    redirect = client.get(path_of(link))
    assert redirect.status_code == 302
    location = urlsplit(redirect["Location"])
    assert location.path == f"/petitions/{mailing.petition.slug}/"
    (token,) = parse_qs(location.query)["t"]
    # What a scanner does with the link ends here: a GET signs nobody.
    page = client.get(f"{location.path}?{location.query}")
    assert page.status_code == 200 and not Signature.objects.exists()
    assert "Hello, Olga!" in page.content.decode()

    # The supporter presses the page's one button: its form posts the token back.
    with django_capture_on_commit_callbacks(execute=True):
        signed = client.post(f"{location.path}?{location.query}", {"t": token})
    assert signed.status_code == 302
    signature = Signature.objects.get()
    assert (signature.supporter, signature.mailing) == (supporter, mailing)
    click = LinkClick.objects.get()
    assert (click.link_index, click.supporter) == (index, supporter)
    # The personal token, which signs as the supporter, is not kept with the click.
    assert "t=" not in click.url and click.url == petition_page_url(mailing.petition)


def test_a_petition_link_with_its_own_token_keeps_it(client, supporter):
    petition = PetitionFactory()
    mailing = MailingFactory(
        petition=petition,
        html_body=f'<a href="{petition_page_url(petition)}?source=x&amp;t=given">Sign</a>',
    )
    response = follow(client, mailing, supporter, 0)
    assert parse_qs(urlsplit(response["Location"]).query) == {"source": ["x"], "t": ["given"]}


def test_a_link_to_another_site_gets_no_petition_token(client, mailing, supporter):
    response = follow(client, mailing, supporter, 1)
    assert "t=" not in response["Location"].replace("?a=1&b=2", "")
    assert Mailing.objects.filter(pk=mailing.pk).exists()
