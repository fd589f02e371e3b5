"""The only template tags a campaigner's mailing may use.

No `load`, `include`, `extends`, `url`, `debug` or `for`: a mailing template sees a flat dict
of strings and nothing else on the server. No `verbatim` either: what it wraps would reach the
message without the sanitiser ever seeing it as HTML (mailings/content/compose.py keeps tags out
of the sanitiser's way); `{% templatetag openbrace %}` writes a literal brace.
"""

from django.template import Library, defaulttags

MERGE_TAGS = ("autoescape", "comment", "filter", "firstof", "if", "now", "spaceless",
              "templatetag", "with")  # fmt: skip

register = Library()

for name in MERGE_TAGS:
    register.tag(name, defaulttags.register.tags[name])
