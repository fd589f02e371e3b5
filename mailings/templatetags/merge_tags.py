"""The only template tags a campaigner's mailing may use.

No `load`, `include`, `extends`, `url`, `debug` or `for`: a mailing template sees a flat dict
of strings and nothing else on the server.
"""

from django.template import Library, defaulttags

register = Library()

for name in ("autoescape", "comment", "filter", "firstof", "if", "now", "spaceless",
             "templatetag", "verbatim", "with"):  # fmt: skip
    register.tag(name, defaulttags.register.tags[name])
