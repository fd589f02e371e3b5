from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Outbound webhooks"

    def ready(self) -> None:
        # Connects the receivers of the lower apps' signals (supporters, campaigns, mailings).
        from . import receivers  # noqa: F401
