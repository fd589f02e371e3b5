"""Links followed: the tracked-link redirect and the open pixel of bulk messages.

- redirect.py: where a click token leads (the link its index names in the compiled mailing),
  with the supporter's personal petition token added on the way.
- services.py: record a click or an open on the ledger (first of each per delivery).
- views.py: /r/<token>/ and /o/<token>.gif, which record and never act.
The tokens themselves are made with the mailing's links, in mailings/content/tracked_links.py.
"""
