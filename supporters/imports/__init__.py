"""Import supporters from a CSV file: the admin upload, the worker task and the command.

Modules by phase: `reading` (bytes → rows: encoding, delimiter, line limits), `mapping`
(columns → fields), `cleaning` (one row → a staging tuple or a rejection), `staging` (rows →
a temporary table), `merge` (the temporary table → supporters, tags, consent, rejections),
`lanes` (the sessions that merge shares of a file at once, committing all or none), `services`
(the import's life: create, start, run). Nothing here imports
`supporters.models` at package level: supporters/models.py imports `imports.models`.
"""
