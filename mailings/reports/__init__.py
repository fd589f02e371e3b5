"""Report: what a mailing achieved over time, and beside other mailings.

- models.py: the counters, by hour and by language version, variant, mailbox domain and link
  (re-exported by mailings/models.py).
- ledger.py: what each figure means on the ledger, said once, and the figures counted from
  the ledger itself (to rebuild the counters, and to check them).
- buckets.py: the writers that keep the counters as the ledger changes, in its transactions.
- receivers.py: unsubscribes and signatures, heard from supporters and campaigns by signal.
- selectors.py: a report and a comparison, read from the counters alone.
- charts.py: the line charts, drawn on the server as SVG.
The pages are mailings/admin_views/report.py.
"""
