from django.core.management.base import BaseCommand, CommandError

from mailings.models import Mailing
from mailings.sending import MailingStateError, mailing_send


class Command(BaseCommand):
    help = "Queue a draft or scheduled mailing for sending now; a Celery worker sends it."

    def add_arguments(self, parser):
        parser.add_argument("mailing_id", type=int)

    def handle(self, *args, mailing_id: int, **options):
        mailing = Mailing.objects.filter(pk=mailing_id).first()
        if mailing is None:
            raise CommandError(f"There is no mailing with id {mailing_id}.")
        try:
            mailing_send(mailing=mailing)
        except MailingStateError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Queued “{mailing}” for sending. Watch it in the admin.")
