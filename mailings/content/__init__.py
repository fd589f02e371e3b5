"""Compose: what a mailing says, checked when it is saved and compiled once per worker.

- compose.py: the campaigner's HTML made into a whole message (inlined CSS, the layout, the
  plain text made from the HTML), sanitised.
- template_checks.py: what a merge-field template may contain, with errors on the writer's line.
- rendering.py: a mailing compiled once per process, and one supporter's message from it.
- tracked_links.py: the link list of a compiled mailing, and the signed tokens of its tracked
  links and open pixel (read back by mailings/links/).
- senders.py: the sender addresses a mailing may use.
"""
