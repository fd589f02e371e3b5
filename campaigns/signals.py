"""Signals for the apps above campaigns, which campaigns may not import (the layer rule).

Each is sent inside the transaction that made the change, so a receiver's writes commit or
roll back with it.
"""

from django.dispatch import Signal

# New signatures were credited to mailings (a personal link from a mailing brought them).
# Arguments: signature_ids, each a signature just created with its mailing set. mailings
# counts them in each mailing's report.
signatures_credited = Signal()
