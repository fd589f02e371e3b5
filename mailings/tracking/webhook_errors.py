"""Answer bad ESP webhook posts with a 4xx, never a 500; store a post's events all or none.

anymail raises on a body it cannot parse (json.loads, a missing field, an SNS message that is
not JSON), and Django answers a 500: the ESP retries it for days and the error log fills up.
A body that cannot be read never becomes readable, so it gets a 400; a failed authentication
(anymail's AnymailWebhookValidationFailure, a 400 by default) gets a 403. Both come before
anything is stored: anymail parses every event of a post before it signals the first.
Database and other server errors stay 500s, which the ESP retries, as it should.

Each webhook post runs in one transaction, rolled back unless it is answered 2xx/3xx, and its
tracking events are gathered while it runs and stored after it commits, together, only if it
is answered 2xx/3xx (mailings.tracking.intake): the events of a batching ESP's post (SendGrid,
Mailjet) are all stored or none, and queued only once stored. A post whose events cannot be
stored is answered 500 with nothing stored, and the ESP's retry brings it all again. The
events are written outside the post's transaction because the write is shared with other
posts being answered at the same moment (a group commit).
"""

import logging

from anymail.exceptions import AnymailAPIError, AnymailWebhookValidationFailure
from django.db import transaction
from django.http import HttpResponse

from mailings.tracking.intake import tracking_events_collected, tracking_events_store

logger = logging.getLogger(__name__)

WEBHOOK_PATH_PREFIX = "/anymail/"
MALFORMED = (ValueError, KeyError, TypeError, IndexError, AttributeError, AnymailAPIError)


class WebhookErrorsMiddleware:
    """Refuse a bad webhook post with a 4xx; store each post's events all or none."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith(WEBHOOK_PATH_PREFIX):
            return self.get_response(request)
        with tracking_events_collected() as events, transaction.atomic():
            # Django has turned any exception into a response by now: judge by its status.
            response = self.get_response(request)
            if response.status_code >= 400:
                transaction.set_rollback(True)
        if events and response.status_code < 400:
            # Raises (a 500, the ESP retries) unless every event is committed.
            tracking_events_store(rows=events)
        return response

    def process_exception(self, request, exception):
        if not request.path_info.startswith(WEBHOOK_PATH_PREFIX):
            return None
        if isinstance(exception, AnymailWebhookValidationFailure):
            logger.warning("Refused an ESP webhook post to %s: %s", request.path_info, exception)
            return HttpResponse("Webhook authentication failed.\n", status=403)
        if isinstance(exception, MALFORMED):
            logger.warning(
                "Refused a malformed ESP webhook post to %s: %r", request.path_info, exception
            )
            return HttpResponse("Malformed webhook body.\n", status=400)
        return None
