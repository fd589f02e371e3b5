"""Edit a mailing's HTML body in a rich-text editor, or as HTML where the editor would drop some.

The editor is django-prose-editor (ProseMirror and Tiptap, its assets from the package). It
keeps only what its schema knows: paragraphs, headings, bold, italic, lists, quotes, line
breaks, links (a link with class="button" is the call to action, styled by the email layout)
and images by URL; mailings/static/mailings/editor/ adds the menu of merge fields, the personal
petition link, the button and the image. Whatever else a body holds (a style attribute, a
table, a <style>, a comment, a template tag between paragraphs) the editor would drop without a
word, so such a body opens as HTML, with a note that says why (`editor_misfits`); the browser
checks the same again by the editor's own round trip. Either way, what is saved goes through
the form's template checks and sanitiser (mailings/forms.py), as raw HTML always did.
"""

import json
from html.parser import HTMLParser

from django.core.serializers.json import DjangoJSONEncoder
from django_prose_editor.widgets import AdminProseEditorWidget
from js_asset import Media, Script

from mailings.content.rendering import MERGE_FIELDS

# What the menu offers as the fallback of a merge field that may be empty; the campaigner edits
# it in the dialog, or later in the text itself.
MERGE_FIELD_FALLBACKS = {"first_name": "friend", "full_name": "friend"}
# Not in the merge-field menu: each is a link's address, which the petition-link and button
# items insert (petition_url), or the layout's footer already carries (unsubscribe_url).
LINK_FIELDS = ("petition_url", "unsubscribe_url")

EDITOR_EXTENSIONS = {
    "Heading": {"levels": [1, 2, 3, 4]},
    "Bold": True,
    "Italic": True,
    "BulletList": True,
    # Its list-type dialog writes attributes the sanitiser drops.
    "OrderedList": {"enableListAttributes": False},
    "ListItem": True,
    "Blockquote": True,
    "HardBreak": True,
    # "Open in a new window" means nothing in an email.
    "Link": {"enableTarget": False},
    # Inline, so an image sits in a paragraph as mail clients expect.
    "Image": {"inline": True},
    "RallyMailing": {
        "petitionUrl": "{{ petition_url }}",
        "mergeFields": [
            {"name": name, "fallback": MERGE_FIELD_FALLBACKS.get(name, "")}
            for name in MERGE_FIELDS
            if name not in LINK_FIELDS
        ],
    },
    "Menu": {
        "groups": [
            {"group": "blockType -lists", "type": "dropdown", "minItems": 2},
            {"group": "lists"},
            {"group": "nodes -blockType -lists"},
            {"group": "marks"},
            {"group": "link"},
            {"group": "rallyMailing"},
            {"group": "history"},
        ]
    },
}

# The elements the editor keeps, each with the attributes it keeps on them. <b> and <i> come
# back as <strong> and <em>, which mean the same; rel is what the sanitiser puts on links.
EDITOR_ELEMENTS = {
    **{tag: set() for tag in ("p", "h1", "h2", "h3", "h4", "strong", "b", "em", "i", "br")},
    **{tag: set() for tag in ("ul", "li", "blockquote")},
    "ol": {"start", "type", "data-type"},
    "a": {"href", "title", "class", "target", "rel"},
    "img": {"src", "alt", "title", "width", "height"},
}
# What may stand at the top of a body; text or inline elements there the editor would wrap in
# a paragraph of their own (a `{% if %}` between two paragraphs would become one).
TOP_LEVEL_BLOCKS = {"p", "h1", "h2", "h3", "h4", "ul", "ol", "blockquote"}
# Text directly in a list item or a quote is fine: the editor wraps it in a paragraph, and the
# email layout sets a paragraph in a list item without a margin (templates/mailings/email/body.css).
_VOID_ELEMENTS = {"br", "img", "hr", "wbr", "meta", "link", "input", "col", "area", "base"}


class _MisfitFinder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        # Each kind of misfit once, in the order met: an element, an attribute (with the
        # elements it is on), and text outside a paragraph (with the first line it is on).
        self.elements: dict[str, None] = {}
        self.attributes: dict[str, dict[str, None]] = {}
        self.others: dict[str, None] = {}

    def handle_starttag(self, tag, attrs):
        if tag not in EDITOR_ELEMENTS:
            self.elements.setdefault(tag, None)
        else:
            for name, _value in attrs:
                if name not in EDITOR_ELEMENTS[tag]:
                    self.attributes.setdefault(name, {}).setdefault(tag, None)
            if not self.open and tag not in TOP_LEVEL_BLOCKS:
                self._outside_paragraph(self.getpos()[0])
        if tag not in _VOID_ELEMENTS:
            self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in _VOID_ELEMENTS:
            self.open.pop()

    def handle_endtag(self, tag):
        if tag in self.open:
            while self.open.pop() != tag:
                pass

    def handle_data(self, data):
        if not data.strip() or "style" in self.open:
            return
        # The line of the text itself, not of the whitespace before it.
        line = self.getpos()[0] + data[: len(data) - len(data.lstrip())].count("\n")
        if not self.open:
            self._outside_paragraph(line)
        elif self.open[-1] in ("ul", "ol"):
            self.others.setdefault(f"text in a list but outside its items (line {line})", None)

    def handle_comment(self, data):
        self.others.setdefault("HTML comments", None)

    def _outside_paragraph(self, line: int) -> None:
        if not any(other.startswith("text or a template tag outside") for other in self.others):
            self.others[f"text or a template tag outside any paragraph (line {line})"] = None

    def misfits(self) -> list[str]:
        def tags(names) -> str:
            return ", ".join(f"<{name}>" for name in names)

        return [
            *(["<style> blocks"] if "style" in self.elements else []),
            *([f"{tags(e for e in self.elements if e != 'style')} elements"]
              if set(self.elements) - {"style"} else []),
            *(f"{name} attributes (on {tags(on)})" for name, on in self.attributes.items()),
            *self.others,
        ]  # fmt: skip


def editor_misfits(html: str) -> list[str]:
    """Return what in `html` the editor would drop or change, in words; empty if nothing.

    Used on each stored body before it is shown: a body with any misfit opens as HTML.
    """
    finder = _MisfitFinder()
    finder.feed(html)
    finder.close()
    return finder.misfits()


class MailingBodyEditor(AdminProseEditorWidget):
    """Show an HTML body in the editor, or as HTML when `editor_misfits` finds anything.

    The page script (mailings/static/mailings/editor/body_editor.js) starts the editor itself,
    so that a body can open as HTML and switch either way; without script it is a textarea.
    """

    def __init__(self, attrs=None):
        super().__init__(
            attrs={"class": "vLargeTextField", "rows": 20, **(attrs or {})},
            config={"extensions": EDITOR_EXTENSIONS},
            preset="configurable",
        )

    @property
    def media(self):
        return super().media + Media(
            css={"all": ["mailings/editor/body_editor.css"]},
            js=[Script("mailings/editor/body_editor.js", type="module")],
        )

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        widget_attrs = context["widget"]["attrs"]
        # Not the package's own attribute: its script would start the editor on every body.
        widget_attrs.pop(f"data-django-prose-editor-{self.preset}")
        widget_attrs["data-rally-body-editor"] = json.dumps(
            self.get_config(), separators=(",", ":"), cls=DjangoJSONEncoder
        )
        misfits = editor_misfits(self.format_value(value) or "")
        if misfits:
            widget_attrs["data-rally-body-mode"] = "html"
            widget_attrs["data-rally-body-note"] = (
                "This body opens as HTML, because the editor would drop "
                + "; ".join(misfits)
                + ". Edit it here, or switch to the editor if you can do without that."
            )
        else:
            widget_attrs["data-rally-body-mode"] = "editor"
        return context
