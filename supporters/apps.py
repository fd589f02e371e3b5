from django.apps import AppConfig


class SupportersConfig(AppConfig):
    name = "supporters"
    verbose_name = "Supporters"

    def ready(self):
        from anymail.signals import inbound

        from .inbound import unsubscribe_from_inbound

        # The mailto: unsubscribe address (supporters/inbound.py).
        inbound.connect(
            unsubscribe_from_inbound, dispatch_uid="rally.supporters.inbound_unsubscribe"
        )
