from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    """GDPR rights over the whole list: one person's data as JSON, and erasure.

    The top layer (privacy > mailings > campaigns > supporters): a person's data spans every
    app below, and only here may one module read them all.
    """

    name = "privacy"
