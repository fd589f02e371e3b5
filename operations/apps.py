from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """What an operator watches: /healthz, and a page of the workers, queues and sends.

    Beside privacy at the top (operations | privacy > mailings > campaigns > supporters): it
    reads the send ledger and the broker, and nothing below imports it.
    """

    name = "operations"
