"""Signals for the apps above campaigns, which campaigns may not import (the layer rule).

Each is sent inside the transaction that made the change, so a receiver's writes commit or
roll back with it.
"""

from django.dispatch import Signal

# New signatures were credited to mailings (a personal link from a mailing brought them).
# Arguments: signature_ids, each a signature just created with its mailing set. mailings
# counts them in each mailing's report.
signatures_credited = Signal()

# Signatures were created (campaigns/signing/record.py, after either writer wrote a batch).
# Arguments: signature_ids. Sent when the batch's write has committed, or inside the
# transaction of a batch that credits a mailing. webhooks tells integrators
# (signature.created), and must cost next to nothing when nobody listens: signing is the
# hot path.
signatures_created = Signal()
