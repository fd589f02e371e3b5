"""Plumbing that is not about campaigns, shared by every app; it imports none of them.

- group_commit.py: concurrent requests of one process share a transaction (signing, webhooks).
- richtext.py: the HTML sanitiser for petition and mailing bodies (nh3).
- roles.py: the roles Rally defines, as permission lists (the Campaigner group).
"""
