"""Signals for the apps above mailings, which mailings may not import (the layer rule).

Each is sent where the change is made, inside its transaction when there is one, so a
receiver that waits for the commit (transaction.on_commit) acts only on what was kept.
"""

from django.dispatch import Signal

# A mailing was sent to everyone: it became SENT (mailing_finish_if_done). Arguments:
# mailing_id. webhooks tells integrators (mailing.sent).
mailing_sent = Signal()
