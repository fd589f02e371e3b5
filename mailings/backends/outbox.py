"""The outbox backend's earlier path, which .env files written before the regrouping name.

EMAIL_BACKEND=mailings.backends.outbox.EmailBackend keeps working; new settings name
mailings.sending.esp.outbox.EmailBackend.
"""

from mailings.sending.esp.outbox import EmailBackend

__all__ = ["EmailBackend"]
