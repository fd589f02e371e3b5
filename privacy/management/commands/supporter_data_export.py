import json

from django.core.management.base import BaseCommand, CommandError

from privacy.selectors import supporter_by_email
from privacy.services import supporter_data_export


class Command(BaseCommand):
    help = (
        "Print everything Rally holds about one supporter as JSON (a subject access request). "
        "Exits 1, printing nothing to stdout, when no supporter has the address."
    )

    def add_arguments(self, parser):
        parser.add_argument("email")

    def handle(self, *args, email: str, **options):
        supporter = supporter_by_email(email)
        if supporter is None:
            raise CommandError("No supporter has that address.")
        data = supporter_data_export(supporter_id=supporter.pk)
        self.stdout.write(json.dumps(data, indent=2, ensure_ascii=False))
