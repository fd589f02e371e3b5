from django.core.management.base import BaseCommand, CommandError

from mailings.delivery_counts import delivery_counts_rebuild
from mailings.models import Mailing
from mailings.reports.ledger import report_counters_rebuild


class Command(BaseCommand):
    help = (
        "Count mailings' report figures and deliveries by status again from their ledger: for "
        "mailings sent before reports were kept, or after the ledger was mended by hand. Run "
        "it on mailings that have gone quiet: changes made while it counts may be missed or "
        "counted twice in the report (the counts by status are rebuilt safely at any time)."
    )

    def add_arguments(self, parser):
        parser.add_argument("mailing_ids", type=int, nargs="*", help="the mailings to count")
        parser.add_argument(
            "--all", action="store_true", help="every mailing that has begun sending"
        )

    def handle(self, *args, mailing_ids: list[int], **options):
        if options["all"] == bool(mailing_ids):
            raise CommandError("Name the mailings to count again, or give --all (not both).")
        mailings = Mailing.objects.order_by("pk")
        if options["all"]:
            mailings = mailings.filter(started_at__isnull=False)
        else:
            mailings = mailings.filter(pk__in=mailing_ids)
            missing = set(mailing_ids) - set(mailings.values_list("pk", flat=True))
            if missing:
                raise CommandError(
                    f"There is no mailing with id {', '.join(map(str, sorted(missing)))}."
                )
        for mailing in mailings.only("pk", "name"):
            totals = report_counters_rebuild(mailing_id=mailing.pk).totals()
            delivery_counts_rebuild(mailing_id=mailing.pk)
            self.stdout.write(
                f"“{mailing.name}”: {totals['sent']:,} sent, {totals['signatures']:,} signatures, "
                f"{totals['unsubscribes']:,} unsubscribes."
            )
