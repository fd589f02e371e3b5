from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from api.models import ApiToken
from api.services.tokens import api_token_create


class Command(BaseCommand):
    help = "Make an OSDI API token and print its secret, once, on the last line."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="what the token is for, unique")
        parser.add_argument("--scope", required=True, choices=ApiToken.Scope.values)

    def handle(self, *args, name: str, scope: str, **options):
        name = name.strip()
        if not name:
            raise CommandError("--name must not be empty")
        try:
            issued = api_token_create(name=name, scope=scope)
        except IntegrityError:
            raise CommandError(f"a token named {name!r} exists already") from None
        self.stdout.write(
            f"API token {name!r} ({scope}) made. Its secret is shown this once; keep it safe:"
        )
        # The contract: the secret alone, on the last line.
        self.stdout.write(issued.secret)
