"""Writes of the OSDI API, one module per resource: tokens, people, taggings."""
