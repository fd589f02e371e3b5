"""Public endpoints of bulk messages: the tracked-link redirect and the open pixel.

Link scanners and mail-privacy proxies fetch both without a person behind them, so neither
does more than record: no GET here unsubscribes or signs anyone (the petition page a click
leads to signs only on its form's POST).
"""

import base64

from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods

from mailings.content.tracked_links import read_open_token
from mailings.links.redirect import click_destination
from mailings.links.services import delivery_open_record, link_click_record

# A transparent 1×1 GIF.
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


@require_http_methods(["GET", "HEAD"])
def tracked_link_redirect(request, token: str):
    """Send the reader to the link the token names, and record the click (GET only).

    Any token that leads nowhere gets one neutral page, the same for every reason. A HEAD is
    answered as a GET would be but records nothing: a person's click is a GET.
    """
    destination = click_destination(token)
    if destination is None:
        response = render(request, "mailings/link_invalid.html", status=404)
    else:
        if request.method == "GET":
            link_click_record(
                mailing_id=destination.mailing_id,
                supporter_id=destination.supporter_id,
                link_index=destination.link_index,
                url=destination.recorded_url,
            )
        response = HttpResponseRedirect(destination.url)
        # The destination learns nothing of the token that led there.
        response["Referrer-Policy"] = "no-referrer"
    add_never_cache_headers(response)
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@require_http_methods(["GET", "HEAD"])
def open_pixel(request, token: str):
    """Return the pixel, the same whatever the token; a valid one's GET records the open."""
    if request.method == "GET":
        opened = read_open_token(token)
        if opened is not None:
            delivery_open_record(mailing_id=opened.mailing_id, supporter_id=opened.supporter_id)
    response = HttpResponse(PIXEL_GIF, content_type="image/gif")
    # Every open must reach us: no browser, proxy or mail client may keep a copy.
    add_never_cache_headers(response)
    response["Pragma"] = "no-cache"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response
