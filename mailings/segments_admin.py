"""The saved segments' admin, at /admin/supporters/segment/, with the live count of members.

Registered from mailings (mailings/admin.py imports this module) because counting a segment
reads signatures and deliveries, which the supporters app may not import (the layer rule).

- The change page shows the saved segment's count beside its conditions;
  mailings/static/mailings/segment_count.js keeps it live as the campaigner edits, by sending
  the form's own fields (match and the conditions' inline formset) to `count.json`, which
  checks them with the very form that saves them and counts the segment they describe.
- `<id>/count.json` answers `{"count": N}` for the saved segment; outside scripts read it, so
  the shape stays. Viewing a segment, and its count, needs supporters.view_segment.
"""

from functools import partial

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet, inlineformset_factory
from django.http import HttpRequest, JsonResponse, QueryDict
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_GET

from mailings.segments import (
    CONDITION_FIELDS,
    MAX_DAYS,
    REQUIRED_FIELDS,
    conditions_count,
    fields_read_by,
    segment_count,
)
from supporters.models import Language, Segment, SegmentCondition

# The inline formset's prefix, as the admin names it (the conditions' related name): the
# script sends the form's fields under it, and `count.json` reads them back the same way.
CONDITIONS_PREFIX = "conditions"


# How the form's messages name each field: "needs a petition", "does not use a number of days".
FIELD_NOUNS = {"days": "number of days", "tier": "tier of engagement"}


class SegmentConditionForm(forms.ModelForm):
    """One condition: refuses one that leaves out a field its kind needs or sets one it ignores."""

    language = forms.ChoiceField(choices=[("", "---------"), *Language.choices], required=False)
    days = forms.IntegerField(
        min_value=1,
        max_value=MAX_DAYS,
        required=False,
        help_text=SegmentCondition._meta.get_field("days").help_text,
    )

    class Meta:
        model = SegmentCondition
        fields = ("kind", "negate", *CONDITION_FIELDS)

    def clean(self):
        cleaned_data = super().clean()
        kind = cleaned_data.get("kind")
        if not kind:
            return cleaned_data
        label = SegmentCondition.Kind(kind).label
        read = fields_read_by(kind)
        for name in CONDITION_FIELDS:
            if name in self.errors:
                continue
            value = cleaned_data.get(name)
            given = value not in (None, "")
            field_label = FIELD_NOUNS.get(name, name)
            if given and name not in read:
                self.add_error(
                    name, f"A “{label}” condition does not use a {field_label}: leave it empty."
                )
            elif not given and name in REQUIRED_FIELDS[kind]:
                self.add_error(name, f"A “{label}” condition needs a {field_label}.")
        return cleaned_data


class SegmentConditionFormSet(BaseInlineFormSet):
    def conditions(self) -> list[SegmentCondition]:
        """Return the conditions the valid formset describes, unsaved: none deleted or blank."""
        deleted = set(self.deleted_forms)
        return [
            form.instance
            for form in self.forms
            if form not in deleted and (form.instance.pk or form.has_changed())
        ]


ConditionFormSet = inlineformset_factory(
    Segment,
    SegmentCondition,
    form=SegmentConditionForm,
    formset=SegmentConditionFormSet,
    extra=0,
)


class SegmentConditionInline(admin.TabularInline):
    model = SegmentCondition
    form = SegmentConditionForm
    formset = SegmentConditionFormSet
    extra = 1
    verbose_name = "condition"

    # A condition is part of its segment: whoever may add or change the segment may add,
    # change and delete its conditions, and whoever may view it views them. No permission
    # of the condition model's own is asked for.
    def _segment_permission(self, request, action: str) -> bool:
        opts = Segment._meta
        return request.user.has_perm(f"{opts.app_label}.{action}_{opts.model_name}")

    def _may_edit(self, request, obj) -> bool:
        return self._segment_permission(request, "add" if obj is None else "change")

    def has_add_permission(self, request, obj):
        return self._may_edit(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._may_edit(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._may_edit(request, obj)

    def has_view_permission(self, request, obj=None):
        return self._segment_permission(request, "view") or self._may_edit(request, obj)


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    # No member count in the list: a count reads the whole audience (hundreds of milliseconds
    # on a large list), so the change page alone shows it, for one segment.
    list_display = ("name", "match", "updated_at")
    search_fields = ("name", "description")
    fields = ("name", "description", "match")
    inlines = [SegmentConditionInline]
    change_form_template = "mailings/segments/change_form.html"

    class Media:
        # Keeps the count of members live; segment_count.js builds on live_count.js, so that
        # one comes first.
        js = ["mailings/live_count.js", "mailings/segment_count.js"]

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        view = self.admin_site.admin_view(partial(segment_count_json_view, model_admin=self))
        return [
            path("<int:segment_id>/count.json", view, name=f"{prefix}_count"),
            path("count.json", view, name=f"{prefix}_count_add"),
            *super().get_urls(),
        ]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # A form sent back with errors shows what was typed, not what is saved: not counted yet.
        context["segment_count_html"] = members_html(
            obj, site_name=self.admin_site.name, saved_form=request.method == "GET"
        )
        return super().render_change_form(request, context, add, change, form_url, obj)


@require_GET
def segment_count_json_view(
    request: HttpRequest, *, model_admin, segment_id: int | None = None
) -> JsonResponse:
    """Count a saved segment's members; or, given the form's fields, the segment they describe.

    Without query parameters, `<id>/count.json` counts the saved segment. With the change
    form's fields (`match` and the conditions' formset), it counts those, saved or not; the
    add page, which has no segment yet, asks `count.json` with them alone.
    """
    if not model_admin.has_view_permission(request):
        return JsonResponse({"error": "You may not view segments."}, status=403)
    segment = Segment()
    if segment_id is not None:
        segment = Segment.objects.filter(pk=segment_id).first()
        if segment is None:
            return JsonResponse({"error": f"There is no segment {segment_id}."}, status=404)
    if not request.GET:
        if segment.pk is None:
            return JsonResponse({"count": conditions_count([], match=Segment.Match.ALL)})
        return JsonResponse({"count": segment_count(segment)})
    try:
        match, conditions = conditions_from_query(request.GET, segment=segment)
    except ValidationError as error:
        return JsonResponse({"error": " ".join(error.messages)}, status=400)
    return JsonResponse({"count": conditions_count(conditions, match=match)})


def conditions_from_query(
    query: QueryDict, *, segment: Segment
) -> tuple[str, list[SegmentCondition]]:
    """Return the match and the conditions the form's fields describe, checked by the form.

    Raises ValidationError with every message the form would show, each naming its condition.
    """
    match = query.get("match", segment.match or Segment.Match.ALL)
    if match not in Segment.Match.values:
        raise ValidationError(f"match: “{match}” is neither “all” nor “any”.")
    if f"{CONDITIONS_PREFIX}-TOTAL_FORMS" not in query:
        return match, list(segment.conditions.all()) if segment.pk else []
    formset = ConditionFormSet(query, instance=segment, prefix=CONDITIONS_PREFIX)
    if not formset.is_valid():
        raise ValidationError(_formset_messages(formset))
    return match, formset.conditions()


def _formset_messages(formset) -> list[str]:
    messages = list(formset.non_form_errors())
    for number, errors in enumerate(formset.errors, start=1):
        for name, field_errors in errors.items():
            where = f"condition {number}" + ("" if name == "__all__" else f", {name}")
            messages += [f"{where}: {message}" for message in field_errors]
    return messages


def members_html(segment: Segment | None, *, site_name: str, saved_form: bool = True) -> str:
    """Render the count beside the conditions: the saved segment's, which the script keeps live.

    The status role makes screen readers announce each new count; a page without JavaScript
    shows the count of what was saved. A form sent back with errors (`saved_form` false) shows
    what was typed, which the script counts at once.
    """
    if segment is None or segment.pk is None:
        url = reverse(f"{site_name}:supporters_segment_count_add")
        text, counted = "Counted as you choose the conditions.", ""
    elif not saved_form:
        url = reverse(f"{site_name}:supporters_segment_count", args=[segment.pk])
        text, counted = "Counted as you change the conditions.", ""
    else:
        url = reverse(f"{site_name}:supporters_segment_count", args=[segment.pk])
        text, counted = describe_count(segment_count(segment)), " data-counted-saved"
    return format_html(
        '<div class="segment-count" data-url="{}"{}>'
        '<span class="segment-count-text" role="status" aria-live="polite" aria-atomic="true">'
        '{}</span> <span class="segment-count-busy" hidden>(counting…)</span></div>',
        url,
        counted,
        text,
    )


def describe_count(count: int) -> str:
    """Say it as the script does: "1,204 members who may be mailed"."""
    noun = "member" if count == 1 else "members"
    return f"{count:,} {noun} who may be mailed"
