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

# The sunset flow (mailings/sending/sunset.py) took supporters off the list for silence after a
# re-permission mailing: status SUNSET, suppression_reason "sunset". Arguments: supporter_ids
# (those whose status it changed, in one set-based UPDATE that bypasses supporter_suppress),
# mailing_id, at. For receivers that announce a suppression, as they would one by
# supporter_suppress (an outbound webhook's supporter.suppressed).
supporters_sunset = Signal()
