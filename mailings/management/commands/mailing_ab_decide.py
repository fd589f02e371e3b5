import json

from django.core.management.base import BaseCommand, CommandError

from mailings.models import Delivery, Mailing
from mailings.sending import MailingStateError, mailing_snapshot_and_start
from mailings.sending.ab_test import mailing_ab_decide


class Command(BaseCommand):
    help = (
        "Decide a mailing's A/B test now (or pick its winner with --winner) and freeze the rest "
        "of the audience for the winner; Celery workers send it. Prints one JSON line."
    )

    def add_arguments(self, parser):
        parser.add_argument("mailing_id", type=int)
        parser.add_argument(
            "--winner", help="The label to send to the rest (A, B, …) instead of the figures'."
        )

    def handle(self, *args, mailing_id: int, winner: str | None, **options):
        if not Mailing.objects.filter(pk=mailing_id).exists():
            raise CommandError(f"There is no mailing with id {mailing_id}.")
        before = Delivery.objects.filter(mailing_id=mailing_id).count()
        try:
            decision = mailing_ab_decide(
                mailing_id=mailing_id, winner=winner.strip().upper() if winner else None
            )
        except MailingStateError as error:
            raise CommandError(str(error)) from error
        sent_to_remainder = 0
        if decision.winner is not None and not decision.held_because:
            # Freeze the rest here, so that the count printed is the one the workers send to
            # (the task queued by the decision then finds it frozen already).
            mailing_snapshot_and_start(mailing_id=mailing_id)
            sent_to_remainder = Delivery.objects.filter(mailing_id=mailing_id).count() - before
        self.stdout.write(
            json.dumps(
                {
                    "winner": decision.winner,
                    "metric": decision.metric,
                    "confidence": round(decision.confidence, 4),
                    "sent_to_remainder": sent_to_remainder,
                    "significant": decision.significant,
                    "held_because": decision.held_because,
                    "variants": [
                        {
                            "label": figures.label,
                            "sent": figures.sent,
                            "successes": figures.successes,
                        }
                        for figures in decision.figures
                    ],
                }
            )
        )
