"""The mailing's own admin pages beside its change form, one module per page."""
