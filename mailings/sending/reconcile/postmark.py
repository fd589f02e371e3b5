"""Postmark's outbound message search: GET /messages/outbound, filtered by Rally's metadata.

As Postmark documents it (developer/api/messages-api): `count` (at most 500) and `offset`
page through at most 10,000 messages, one `metadata_<key>=<value>` filter at a time, and
`fromdate`/`todate` bound the time the message was received, in US Eastern time. The answer
is `{"TotalCount": n, "Messages": [{"MessageID", "Metadata", …}]}`, the most recent first.

One dead worker leaves up to a batch (hundreds) unknown. Asking for each by
`metadata_delivery_id` costs a request apiece; listing the mailing's messages of the window
by `metadata_mailing_id` costs one per 500. The cheaper of the two is used.
"""

import math
from datetime import datetime, timedelta
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

import requests

from mailings.sending.errors import describe
from mailings.sending.reconcile.base import Accepted, Lookup, Reconciler

PAGE_SIZE = 500
SEARCH_LIMIT = 10_000
EASTERN = ZoneInfo("America/New_York")


class SearchUnavailable(Exception):
    """Postmark did not answer a search: a 429 or 5xx, a timeout, a refused connection."""


class PostmarkReconciler(Reconciler):
    search_lags = True
    # Postmark keeps messages 45 days by default; an account may shorten that to 7.
    record_days = 7

    def __init__(self, connection):
        # The anymail backend that sends: the same account, API URL and timeout.
        self.api_url = connection.api_url
        self.server_token = connection.server_token
        self.timeout = connection.timeout
        self.session = requests.Session()

    def look_up(
        self, *, mailing_id: int, delivery_ids: list[int], since: datetime, until: datetime
    ) -> Lookup:
        lookup = Lookup()
        window = {"fromdate": _eastern(since), "todate": _eastern(until + timedelta(seconds=1))}
        try:
            first = self._search(metadata_mailing_id=mailing_id, offset=0, **window)
            total = first["TotalCount"]
            pages = math.ceil(total / PAGE_SIZE)
            if total <= SEARCH_LIMIT and pages <= len(delivery_ids):
                found = self._list_mailing(mailing_id, first, window)
                lookup.answers = {pk: found.get(pk) for pk in delivery_ids}
            else:
                for pk in delivery_ids:
                    answer = self._search(metadata_delivery_id=pk, offset=0, **window)
                    listed = answer["Messages"][:1]
                    lookup.answers[pk] = (
                        Accepted(message_id=str(listed[0]["MessageID"]))
                        if answer["TotalCount"] and listed
                        else None
                    )
        except SearchUnavailable as trouble:
            lookup.reason = str(trouble)
        finally:
            self.session.close()
        return lookup

    def _list_mailing(self, mailing_id: int, first: dict, window: dict) -> dict[int, Accepted]:
        """Read every page of the mailing's messages in the window; return them by delivery."""
        found = _accepted(first["Messages"])
        total = first["TotalCount"]
        for offset in range(PAGE_SIZE, total, PAGE_SIZE):
            page = self._search(metadata_mailing_id=mailing_id, offset=offset, **window)
            if page["TotalCount"] != total:
                # The window is in the past, so this is the search index catching up: a page
                # may have slid past a message. Not an answer to rely on; ask again later.
                raise SearchUnavailable(
                    f"Postmark's search changed while it was read ({total} then "
                    f"{page['TotalCount']} messages)"
                )
            found.update(_accepted(page["Messages"]))
        return found

    def _search(self, **params) -> dict:
        params["count"] = PAGE_SIZE if "metadata_mailing_id" in params else 1
        try:
            response = self.session.get(
                urljoin(self.api_url, "messages/outbound"),
                params=params,
                headers={
                    "Accept": "application/json",
                    "X-Postmark-Server-Token": self.server_token,
                },
                timeout=self.timeout,
            )
        except requests.RequestException as error:
            raise SearchUnavailable(describe(error)) from error
        if response.status_code != 200:
            raise SearchUnavailable(
                f"Postmark's message search answered {response.status_code}: {response.text[:500]}"
            )
        try:
            answer = response.json()
            int(answer["TotalCount"])
            list(answer["Messages"])
        except (ValueError, KeyError, TypeError) as error:
            raise SearchUnavailable(f"Postmark's message search answered {error!r}") from error
        return answer


def _accepted(messages: list[dict]) -> dict[int, Accepted]:
    """Return the messages that name a Rally delivery, by delivery id."""
    found = {}
    for message in messages:
        delivery_id = str((message.get("Metadata") or {}).get("delivery_id", ""))
        if delivery_id.isdigit():
            found.setdefault(int(delivery_id), Accepted(message_id=str(message["MessageID"])))
    return found


def _eastern(moment: datetime) -> str:
    """Write a time as Postmark's search reads it: US Eastern, to the second."""
    return moment.astimezone(EASTERN).strftime("%Y-%m-%dT%H:%M:%S")
