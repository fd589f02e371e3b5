from django.core.management.base import BaseCommand

from privacy.services import email_erase


class Command(BaseCommand):
    help = (
        "Erase a supporter: remove their personal data from every table and put a keyed hash of "
        "the address on the suppression list, so no import adds it again. Prints one line. An "
        "address Rally does not hold is suppressed all the same, and the command succeeds: the "
        "request is met either way, and running it twice is harmless."
    )

    def add_arguments(self, parser):
        parser.add_argument("email")

    def handle(self, *args, email: str, **options):
        result = email_erase(email=email)
        suppressed = "the address is on the suppression list."
        if result.supporter_id is not None and result.already_erased:
            line = f"Supporter #{result.supporter_id} was erased already; {suppressed}"
        elif result.supporter_id is not None:
            line = (
                f"Erased supporter #{result.supporter_id}: personal data removed from "
                f"{result.table_count} tables; {suppressed}"
            )
        elif result.already_erased and not result.changed:
            line = "No supporter has that address; it was on the suppression list already."
        elif result.changed:
            line = (
                f"No supporter has that address; traces of it removed from "
                f"{result.table_count} tables; {suppressed}"
            )
        else:
            line = f"No supporter has that address, and nothing names it; {suppressed}"
        self.stdout.write(line)
