"""Check a campaigner's template: only known merge fields, allowed tags and safe filters.

mailings/content/rendering.py compiles a campaigner's templates and asks these checks what is wrong
with one, so the admin form can name each mistake and its line.
"""

import difflib
import re
from collections.abc import Iterable

from django.template import Context, Template, TemplateSyntaxError
from django.template.base import FilterExpression, Node, TextNode, TokenType, VariableNode
from django.template.defaulttags import (
    AutoEscapeControlNode,
    CommentNode,
    FilterNode,
    FirstOfNode,
    IfNode,
    NowNode,
    SpacelessNode,
    TemplateLiteral,
    TemplateTagNode,
    WithNode,
)

from mailings.templatetags.merge_tags import MERGE_TAGS

# Filters that would put a supporter's words into the HTML unescaped, or a <script> element.
FORBIDDEN_FILTERS = {"safe", "safeseq", "json_script"}
# Django outputs text written inside a tag ({{ first_name|default:"<b>" }}, {% now "<" %}) as it
# is, unescaped; in the HTML it may not hold what could open an element or close an attribute.
_UNSAFE_IN_HTML = re.compile(r'[<>"]')
_CLOSING_TAGS = {"elif", "else", "endif", "endwith", "endfilter", "endspaceless",
                 "endautoescape", "endcomment"}  # fmt: skip
# Text a merge field may hold, each tried once: a template that fails on one of them (a number
# filter such as divisibleby on a name, timesince on text, an argument given to a filter that
# takes none) would fail the preview and the send, not the save.
_TRIAL_VALUES = ("Ann", "", "12", "<&>\"'")
_NODE_TYPES = (TextNode, VariableNode, IfNode, WithNode, FirstOfNode, FilterNode, NowNode,
               AutoEscapeControlNode, CommentNode, SpacelessNode, TemplateTagNode)  # fmt: skip


def syntax_error_message(error: TemplateSyntaxError) -> str:
    # The parser puts the token it failed on into the error; its line is the campaigner's line.
    token = getattr(error, "token", None)
    message = re.sub(r" on line \d+", "", str(error))
    message = message.replace(" Did you forget to register or load this tag?", "")
    if token is None:
        return message
    command = (token.contents.split() or [""])[0]
    if (
        token.token_type == TokenType.BLOCK
        and command
        and command not in MERGE_TAGS
        and command not in _CLOSING_TAGS
    ):
        message = (
            f"{{% {command} %}} is not allowed in a mailing; the tags you may use are "
            + ", ".join(MERGE_TAGS)
            + "."
        )
    return f"Line {token.lineno}: {message}"


def template_problems(template: Template, *, html: bool, known_fields: Iterable[str]) -> list[str]:
    """Name every unknown field, attribute walk and forbidden construct, with its line.

    Relies on Django internals: the attributes in which each allowed tag's node keeps its
    expressions (`filter_expression`, `conditions_nodelists`, `extra_context`, …) and the
    `token` the parser sets on every node. A node type it does not know is refused, and the
    corpus in tests/mailings/content/test_rendering.py fails if Django moves any of them.
    """
    nodes = template.nodelist.get_nodes_by_type(Node)
    known = set(known_fields)
    for node in nodes:
        if isinstance(node, WithNode):
            known.update(node.extra_context)
        elif isinstance(node, NowNode | FirstOfNode) and node.asvar:
            known.add(node.asvar)
    problems = []
    for node in nodes:
        line = f"Line {node.token.lineno}: " if getattr(node, "token", None) else ""
        if not isinstance(node, _NODE_TYPES):
            problems.append(f"{line}this tag is not allowed in a mailing.")
            continue
        if isinstance(node, AutoEscapeControlNode) and not node.setting:
            problems.append(
                f"{line}{{% autoescape off %}} is not allowed: supporters' names must be escaped."
            )
        if isinstance(node, NowNode) and html and _UNSAFE_IN_HTML.search(node.format_string):
            problems.append(f"{line}{{% now %}} may not write <, > or a double quote.")
        for expression, outputs in _expressions(node):
            problems.extend(
                line + problem
                for problem in _expression_problems(
                    expression, known=known, html_output=html and outputs, node=node
                )
            )
    if not problems:
        problems = _render_problems(template, html=html, known_fields=known_fields)
    return list(dict.fromkeys(problems))


def _render_problems(template: Template, *, html: bool, known_fields: Iterable[str]) -> list[str]:
    """Render the template with each trial value in every field; name the first that fails."""
    names = list(known_fields)
    for value in _TRIAL_VALUES:
        context = Context(dict.fromkeys(names, value), autoescape=html)
        try:
            template.render(context)
        except Exception as error:  # any failure here would fail a send
            return [_render_problem(template, context, error)]
    return []


def _render_problem(template: Template, context: Context, error: Exception) -> str:
    failing = None
    for node in template.nodelist.get_nodes_by_type(VariableNode):
        try:
            node.render(context)
        except Exception:  # looking for the node that fails
            failing = node
            break
    if failing is None:
        return f"this template cannot be written out for every supporter ({error})."
    return (
        f"Line {failing.token.lineno}: {{{{ {failing.token.contents} }}}} cannot be written out "
        f"for every supporter: a merge field is text, and this fails on some ({error})."
    )


def _expressions(node: Node):
    """Yield the node's expressions, each with whether its value is written out."""
    if isinstance(node, VariableNode):
        yield node.filter_expression, True
    elif isinstance(node, IfNode):
        conditions = [condition for condition, _ in node.conditions_nodelists if condition]
        while conditions:
            condition = conditions.pop()
            if isinstance(condition, TemplateLiteral):
                yield condition.value, False
            else:
                # An operator: `first` and, unless it is `not`, `second` (django.template.smartif).
                for side in ("first", "second"):
                    if getattr(condition, side, None) is not None:
                        conditions.append(getattr(condition, side))
    elif isinstance(node, WithNode):
        for expression in node.extra_context.values():
            yield expression, True
    elif isinstance(node, FirstOfNode):
        for expression in node.vars:
            yield expression, True
    elif isinstance(node, FilterNode):
        yield node.filter_expr, True


def _expression_problems(
    expression: FilterExpression, *, known: set[str], html_output: bool, node: Node
) -> list[str]:
    problems = []
    variables = []
    literals = []
    # {% filter %} filters its own output, which it names "var".
    if expression.is_var and not isinstance(node, FilterNode):
        variables.append(expression.var)
    elif isinstance(expression.var, str):
        literals.append(expression.var)
    for function, arguments in expression.filters:
        name = getattr(function, "_filter_name", function.__name__)
        if name in FORBIDDEN_FILTERS:
            problems.append(f"the {name} filter is not allowed in a mailing.")
        for is_variable, argument in arguments:
            (variables if is_variable else literals).append(argument)
    for variable in variables:
        if variable.lookups is None:  # a number, or _("text")
            literals.append(variable.literal)
            continue
        name, *parts = variable.lookups
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            problems.append(f"unknown merge field {variable.var}{hint}")
        elif parts:
            problems.append(
                f"{{{{ {variable.var} }}}}: a merge field is plain text with no parts to look "
                f"up; write {{{{ {name} }}}}."
            )
    if html_output:
        problems.extend(
            f"{literal!r} is written out as it is, unescaped: it may not hold <, > or a double "
            "quote in the HTML."
            for literal in literals
            if isinstance(literal, str) and _UNSAFE_IN_HTML.search(literal)
        )
    return problems
