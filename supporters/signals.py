"""Signals for the apps above supporters, which supporters may not import (the layer rule).

Each is sent inside the transaction that made the change, so a receiver's writes commit or
roll back with it.
"""

from django.dispatch import Signal

# A supporter left the list through a mailing's message: its unsubscribe link or header
# (supporter_unsubscribe given the mailing its token names). Arguments: supporter_id,
# mailing_id, at. Sent only when they were subscribed until then. mailings records it on the
# delivery, for the mailing's report.
unsubscribed_by_mailing = Signal()
