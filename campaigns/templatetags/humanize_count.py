"""A thousands separator that follows the page's language: 12,345 or 12 345."""

from django import template
from django.utils.formats import number_format

register = template.Library()


@register.filter
def thousands(value) -> str:
    return number_format(value, force_grouping=True)
