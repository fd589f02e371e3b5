"""Fill in a mailing's confirmation page (send, schedule, approve) as a campaigner does."""

import re


def confirmation_fields(client, url: str, **fields) -> dict:
    """Open the page and return what its form submits: what it showed, the count typed back.

    `fields` add to or replace them (another typed count, a time and zone, …).
    """
    page = client.get(url)
    assert page.status_code == 200, page.status_code
    html = page.content.decode()
    shown_count = re.search(r'name="shown_count" value="(\d+)"', html)
    shown_version = re.search(r'name="shown_version" value="([^"]+)"', html)
    assert shown_count and shown_version, "the page shows no confirmation form"
    return {
        "shown_count": shown_count[1],
        "shown_version": shown_version[1],
        "typed_count": shown_count[1],
        **fields,
    }
