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

# A supporter's status became subscribed again on fresh consent (supporter_subscribe).
# Arguments: supporter_id. webhooks tells integrators (supporter.subscribed).
supporter_subscribed = Signal()

# A subscribed supporter unsubscribed, by whatever way (supporter_unsubscribe). Arguments:
# supporter_id. webhooks tells integrators (supporter.unsubscribed).
supporter_unsubscribed = Signal()

# The ESP's word took a supporter off the list (supporter_suppress). Arguments: supporter_id,
# status (the new one), reason. webhooks tells integrators (supporter.suppressed).
supporter_suppressed = Signal()

# A supporter is being erased (privacy's erasure), sent before their row is scrubbed, while
# it still describes them. Arguments: supporter_id. webhooks scrubs the events it keeps about
# them in the same transaction, and tells integrators (supporter.erased, identifiers only).
supporter_erasing = Signal()
