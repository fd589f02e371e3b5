"""Render a compiled merge template by substitution where its shape allows, as Django would.

A bulk message renders three templates per recipient, and Django's template engine spends most
of that walking nodes, resolving variables through a Context and checking each value's safety
(docs/performance.md, "Where a message's time goes"). A mailing's templates are nearly always
text with plain merge fields in it, `{{ first_name|default:"friend" }}` at most, and the `{% if %}`
around the open pixel: such a template is turned once into a list of steps — constant text,
a field (escaped for HTML, or its default), a branch on a field — and rendered by joining
strings.

The steps do exactly what Django's nodes do for the same fields (tests/mailings/content/
test_substitution.py renders both for many fields, HTML-special and empty values included). A
template holding anything else (another filter, a tag other than `if` on a plain field, a
dotted variable) is not turned into steps: `substitution_of` returns None, and it is rendered by
Django as before.
"""

import html
from collections.abc import Callable

from django.template import Template
from django.template.base import Node, TextNode, Variable, VariableNode
from django.template.defaultfilters import default as default_filter
from django.template.defaulttags import IfNode, TemplateLiteral

# A step turns the fields into a piece of the output.
Step = Callable[[dict[str, str]], str]


class Substitution:
    """A template as constant text and the fields between it."""

    def __init__(self, steps: list[str | Step]):
        self._steps = steps

    def render(self, fields: dict[str, str]) -> str:
        return _rendered(self._steps, fields)


def _rendered(steps: list[str | Step], fields: dict[str, str]) -> str:
    return "".join(step if step.__class__ is str else step(fields) for step in steps)


def substitution_of(template: Template, *, autoescape: bool) -> Substitution | None:
    """Return the template as a Substitution, or None when its shape is not one we can follow.

    `autoescape` is the rendering Context's: whether values are escaped (HTML) or not. The
    engine must render a missing variable as "" (string_if_invalid unset), as Rally's do.
    """
    if template.engine.string_if_invalid:
        return None
    steps = _steps_of(template.nodelist, autoescape=autoescape)
    return None if steps is None else Substitution(_merge_constants(steps))


def _steps_of(nodes, *, autoescape: bool) -> list[str | Step] | None:
    steps: list[str | Step] = []
    for node in nodes:
        step = _step_of(node, autoescape=autoescape)
        if step is None:
            return None
        steps.append(step)
    return steps


def _step_of(node: Node, *, autoescape: bool) -> str | Step | None:
    if type(node) is TextNode:
        return node.s
    if type(node) is VariableNode:
        return _variable_step(node, autoescape=autoescape)
    if type(node) is IfNode:
        return _if_step(node, autoescape=autoescape)
    return None


def _field_name(variable) -> str | None:
    """Return the name of a plain variable (`first_name`), or None for anything else."""
    if (
        type(variable) is not Variable
        or variable.literal is not None
        or variable.lookups is None
        or len(variable.lookups) != 1
        or variable.translate
    ):
        return None
    return variable.lookups[0]


def _variable_step(node: VariableNode, *, autoescape: bool) -> Step | None:
    expression = node.filter_expression
    if not expression.is_var:
        return None
    name = _field_name(expression.var)
    if name is None:
        return None
    escape = html.escape if autoescape else str
    if not expression.filters:
        # Django resolves a missing field to "" and renders a string escaped (autoescape on).
        return lambda fields: escape(fields.get(name, ""))
    if len(expression.filters) != 1:
        return None
    function, arguments = expression.filters[0]
    if function is not default_filter or len(arguments) != 1:
        return None
    # A constant argument is resolved when the template is compiled; a variable one is not.
    lookup, argument = arguments[0]
    if lookup or not isinstance(argument, str):
        return None
    # Django marks a constant argument safe: the default is written as it is, unescaped.
    fallback = str(argument)
    return lambda fields: escape(value) if (value := fields.get(name, "")) else fallback


def _if_step(node: IfNode, *, autoescape: bool) -> Step | None:
    """An `{% if field %}…{% elif field %}…{% else %}…{% endif %}` on plain fields."""
    branches: list[tuple[str | None, list[str | Step]]] = []
    for condition, nodelist in node.conditions_nodelists:
        name = None
        if condition is not None:
            value = getattr(condition, "value", None)
            if type(condition) is not TemplateLiteral or not value.is_var or value.filters:
                return None
            name = _field_name(value.var)
            if name is None:
                return None
        steps = _steps_of(nodelist, autoescape=autoescape)
        if steps is None:
            return None
        branches.append((name, _merge_constants(steps)))

    def render(fields: dict[str, str]) -> str:
        for name, steps in branches:
            if name is None or fields.get(name):
                return _rendered(steps, fields)
        return ""

    return render


def _merge_constants(steps: list[str | Step]) -> list[str | Step]:
    """Join neighbouring constant pieces, so rendering joins as few strings as it can."""
    merged: list[str | Step] = []
    for step in steps:
        if isinstance(step, str) and merged and isinstance(merged[-1], str):
            merged[-1] += step
        elif not (isinstance(step, str) and not step):
            merged.append(step)
    return merged
