from django.apps import AppConfig


class MailingsConfig(AppConfig):
    name = "mailings"
    verbose_name = "Mailings"

    def ready(self) -> None:
        # Registers the system check of RALLY_SENDERS (`manage.py check`, and every start-up).
        from . import senders  # noqa: F401
