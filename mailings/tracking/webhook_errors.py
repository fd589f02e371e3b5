"""Answer bad ESP webhook posts with a 4xx, never a 500; store a post's events all or none.

anymail raises on a body it cannot parse (json.loads, a missing field, an SNS message that is
not JSON), and Django answers a 500: the ESP retries it for days and the error log fills up.
A body that cannot be read never becomes readable, so it gets a 400; a failed authentication
(anymail's AnymailWebhookValidationFailure, a 400 by default) gets a 403. Both come before
anything is stored: anymail parses every event of a post before it signals the first.
Database and other server errors stay 500s, which the ESP retries, as it should.

Each webhook post runs in one transaction, rolled back unless it is answered 2xx/3xx: the
events of a batching ESP's post (SendGrid, Mailjet) are stored together with one commit, and
queued (delay_on_commit) only once stored; a post that fails half-way leaves nothing, and
the ESP's retry brings it all again.
"""

import logging

from anymail.exceptions import AnymailAPIError, AnymailWebhookValidationFailure
from django.db import transaction
from django.http import HttpResponse

logger = logging.getLogger(__name__)

WEBHOOK_PATH_PREFIX = "/anymail/"
MALFORMED = (ValueError, KeyError, TypeError, IndexError, AttributeError, AnymailAPIError)


class WebhookErrorsMiddleware:
    """Answer a malformed or unauthenticated webhook post with a 4xx; one transaction a post."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith(WEBHOOK_PATH_PREFIX):
            return self.get_response(request)
        with transaction.atomic():
            # Django has turned any exception into a response by now: judge by its status.
            response = self.get_response(request)
            if response.status_code >= 400:
                transaction.set_rollback(True)
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
