"""Report: what a mailing achieved over time, and beside other mailings.

The figures are counters (ReportHour and ReportBreakdown, in mailings/models/report.py) that every
room writing the ledger keeps in its own transaction (mailings/report_counts.py), with what
each figure means said once in mailings/report_figures.py. This room reads them:

- selectors.py: a report and a comparison, read from the counters alone.
- charts.py: the line charts, drawn on the server as SVG.
- ledger.py: the same figures counted from the ledger itself, to rebuild the counters and to
  check them.
- receivers.py: unsubscribes and signatures, heard from supporters and campaigns by signal.
The pages are mailings/admin_views/report.py.
"""
