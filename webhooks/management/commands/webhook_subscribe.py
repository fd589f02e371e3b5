from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from webhooks.event_types import EVENT_TYPES, parse_event_types
from webhooks.services import webhook_subscription_create


class Command(BaseCommand):
    help = (
        "Subscribe a URL to webhook events, signed with a secret, and print the subscription's "
        f"id on the last line. The events: {', '.join(EVENT_TYPES)}."
    )

    def add_arguments(self, parser):
        parser.add_argument("url")
        parser.add_argument(
            "--events", required=True, help="Comma-separated, e.g. signature.created,mailing.sent"
        )
        parser.add_argument(
            "--secret", required=True, help="Shared with the receiver, to check signatures"
        )

    def handle(self, *args, url: str, events: str, secret: str, **options):
        try:
            subscription = webhook_subscription_create(
                url=url, events=parse_event_types(events), secret=secret
            )
        except ValidationError as error:
            raise CommandError(" ".join(_messages(error))) from error
        self.stdout.write(str(subscription.pk))


def _messages(error: ValidationError) -> list[str]:
    if hasattr(error, "error_dict"):
        return [
            f"{field}: {message}"
            for field, errors in error.message_dict.items()
            for message in errors
        ]
    return list(error.messages)
