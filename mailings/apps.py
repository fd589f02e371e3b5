from django.apps import AppConfig


class MailingsConfig(AppConfig):
    name = "mailings"
    verbose_name = "Mailings"

    def ready(self) -> None:
        from anymail.signals import tracking

        from campaigns.signals import signatures_credited

        # Registers the system check of RALLY_SENDERS (`manage.py check`, and every start-up).
        from mailings.content import senders  # noqa: F401
        from mailings.feedback.intake import tracking_event_receive
        from mailings.reports.receivers import (
            signatures_credited_receive,
            unsubscribed_by_mailing_receive,
        )
        from supporters.signals import unsubscribed_by_mailing

        # ESP webhooks (/anymail/<esp>/tracking/) store their events through this receiver.
        tracking.connect(tracking_event_receive, dispatch_uid="rally-tracking-event-receive")
        # A mailing's report counts the unsubscribes and signatures its messages brought.
        unsubscribed_by_mailing.connect(
            unsubscribed_by_mailing_receive, dispatch_uid="rally-report-unsubscribe"
        )
        signatures_credited.connect(
            signatures_credited_receive, dispatch_uid="rally-report-signatures"
        )
