from django.apps import AppConfig


class MailingsConfig(AppConfig):
    name = "mailings"
    verbose_name = "Mailings"

    def ready(self) -> None:
        from anymail.signals import tracking

        # Registers the system check of RALLY_SENDERS (`manage.py check`, and every start-up).
        from mailings.content import senders  # noqa: F401
        from mailings.feedback.intake import tracking_event_receive

        # ESP webhooks (/anymail/<esp>/tracking/) store their events through this receiver.
        tracking.connect(tracking_event_receive, dispatch_uid="rally-tracking-event-receive")
