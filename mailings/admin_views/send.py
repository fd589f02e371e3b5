"""Send, schedule, unschedule and approve: pages that state whom a mailing would reach, in which
languages, and take the recipient count typed back before anything goes out.

Each view takes (request, mailing_id, *, model_admin) and is wired by mailing_admin_urls
(admin_views/__init__.py) inside admin_view, which checks only that the user is staff, so
each view checks its own permission.
"""

import re
from datetime import datetime
from functools import partial
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from mailings.models import Mailing
from mailings.selectors import mailing_audience_counts, mailing_list_protection
from mailings.sending import (
    MailingStateError,
    SendRequestOutcome,
    mailing_approve,
    mailing_send_request,
    mailing_unschedule,
)
from mailings.sending.ab_assignment import ab_labels
from mailings.sending.campaigner_time import moment_from_wall_time, moment_text, zone_names
from mailings.sending.control import SENDABLE
from supporters.models import Language

Status = Mailing.Status

# The zone a campaigner last scheduled in: their next schedule page offers it first.
SESSION_ZONE_KEY = "rally_schedule_zone"


class ConfirmCountForm(forms.Form):
    """The recipient count typed back, beside the count and the version the page showed.

    Typing the count, not ticking a box, is the confirmation: a box gets ticked by habit, a
    number has to be read first, and a labelled text field is as easy as a checkbox with a
    keyboard or a screen reader. The hidden fields say what was confirmed: the services act only
    if the audience is still that size and the mailing unchanged since (its `updated_at`), so a
    second POST of the page, which the first one changed, does nothing.
    """

    typed_count = forms.CharField(
        label="Number of recipients",
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", "size": 12}),
    )
    shown_count = forms.IntegerField(min_value=0, widget=forms.HiddenInput)
    shown_version = forms.CharField(widget=forms.HiddenInput)

    def clean_typed_count(self) -> int:
        # "12,345", "12 345" and "12.345" all mean twelve thousand three hundred and forty-five.
        digits = re.sub(r"[\s,.'’_]", "", self.cleaned_data["typed_count"])
        if not re.fullmatch(r"[0-9]+", digits):
            raise forms.ValidationError("Type the number of recipients in digits.")
        return int(digits)

    def clean_shown_version(self) -> datetime:
        try:
            return datetime.fromisoformat(self.cleaned_data["shown_version"])
        except ValueError:
            raise forms.ValidationError("This page was out of date.") from None

    def clean(self):
        cleaned = super().clean()
        typed, shown = cleaned.get("typed_count"), cleaned.get("shown_count")
        if typed is not None and shown is not None and typed != shown:
            self.add_error(
                "typed_count",
                f"You typed {typed:,}, but this mailing would reach {shown:,} supporters. "
                f"Type {shown:,} to confirm.",
            )
        return cleaned


class ScheduleForm(ConfirmCountForm):
    """A date and time in a time zone, with the count typed back; `send_at` comes out aware."""

    send_at = forms.DateTimeField(
        label="Send at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    zone = forms.ChoiceField(label="Time zone")

    def __init__(self, *args, zone_default: str, **kwargs):
        super().__init__(*args, **kwargs)
        names = zone_names()
        if zone_default not in names:
            names = (zone_default, *names)
        self.fields["zone"].choices = [(name, name.replace("_", " ")) for name in names]
        self.fields["zone"].initial = zone_default

    def clean(self):
        cleaned = super().clean()
        typed_at, zone_name = cleaned.get("send_at"), cleaned.get("zone")
        if typed_at is not None and zone_name:
            # The field read the time as one in the current zone (TIME_ZONE); make_naive gives
            # back the wall time typed, which is in the zone chosen beside it.
            wall_time = timezone.make_naive(typed_at)
            try:
                cleaned["send_at"] = moment_from_wall_time(wall_time, ZoneInfo(zone_name))
            except ValueError as error:
                self.add_error("send_at", str(error))
        return cleaned


def send_view(request, mailing_id: int, *, model_admin):
    """Show whom the mailing would reach; on POST send it now, or ask for approval."""
    if not model_admin.has_send_permission(request):
        raise PermissionDenied
    mailing = get_object_or_404(Mailing, pk=mailing_id)
    form = ConfirmCountForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        return _confirmed(request, mailing, form, mailing_send_request)
    refusal = None
    if mailing.status not in SENDABLE:
        refusal = "only a draft or scheduled mailing can be sent"
    return _page(request, model_admin, mailing, "send.html", "Send now", form, refusal)


def schedule_view(request, mailing_id: int, *, model_admin):
    """Show whom the mailing would reach and take a time in a zone; on POST schedule it."""
    if not model_admin.has_send_permission(request):
        raise PermissionDenied
    mailing = get_object_or_404(Mailing.objects.select_related("send_requested_by"), pk=mailing_id)
    zone = _campaigner_zone(request)
    form = ScheduleForm(request.POST if request.method == "POST" else None, zone_default=str(zone))
    if form.is_valid():
        # Offered first from now on, and the zone the outcome is told in.
        request.session[SESSION_ZONE_KEY] = form.cleaned_data["zone"]
        send_at = form.cleaned_data["send_at"]
        return _confirmed(request, mailing, form, partial(mailing_send_request, send_at=send_at))
    refusal = None
    if mailing.status not in (*SENDABLE, Status.AWAITING_APPROVAL):
        refusal = "only a draft or scheduled mailing can be scheduled"
    return _page(
        request, model_admin, mailing, "schedule.html", "Schedule", form, refusal,
        scheduled_for=_scheduled_text(mailing, zone),
    )  # fmt: skip


@require_POST
def unschedule_view(request, mailing_id: int, *, model_admin):
    """Take a scheduled mailing, or a send awaiting approval, back to a draft."""
    if not model_admin.has_send_permission(request):
        raise PermissionDenied
    mailing = get_object_or_404(Mailing, pk=mailing_id)
    try:
        mailing_unschedule(mailing=mailing, actor=request.user)
    except MailingStateError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request, f"“{mailing}” is a draft again: nothing goes out until it is sent anew."
        )
    return HttpResponseRedirect(_change_url(mailing))


def approve_view(request, mailing_id: int, *, model_admin):
    """Show the send that awaits approval and whom it would reach; on POST approve it."""
    if not model_admin.has_approve_permission(request):
        raise PermissionDenied
    mailing = get_object_or_404(Mailing.objects.select_related("send_requested_by"), pk=mailing_id)
    form = ConfirmCountForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        return _confirmed(request, mailing, form, mailing_approve)
    refusal = None
    if mailing.status != Status.AWAITING_APPROVAL:
        refusal = "only a send awaiting approval can be approved"
    elif mailing.send_requested_by_id == request.user.pk:
        refusal = "you asked for this send; another campaigner must approve it"
    return _page(
        request, model_admin, mailing, "approve.html", "Approve", form, refusal,
        scheduled_for=_scheduled_text(mailing, _campaigner_zone(request)),
        time_passed=mailing.scheduled_at is not None and mailing.scheduled_at <= timezone.now(),
    )  # fmt: skip


def _confirmed(request, mailing: Mailing, form: ConfirmCountForm, service) -> HttpResponseRedirect:
    """Call the page's service for what the campaigner confirmed; say what happened or why not.

    A refusal goes back to the same page, which shows things as they are now (a new count, a new
    status); a success goes to the mailing.
    """
    try:
        outcome = service(
            mailing=mailing,
            actor=request.user,
            confirmed_count=form.cleaned_data["shown_count"],
            confirmed_updated_at=form.cleaned_data["shown_version"],
        )
    except MailingStateError as error:
        messages.error(request, str(error))
        return HttpResponseRedirect(request.path)
    messages.success(request, _requested_message(mailing, outcome, _campaigner_zone(request)))
    return HttpResponseRedirect(_change_url(mailing))


def _page(request, model_admin, mailing, template, page_name, form, refusal, **extra):
    counts = mailing_audience_counts(mailing)
    labels = dict(Language.choices)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": f"{page_name}: {mailing}",
        "page_name": page_name,
        "mailing": mailing,
        "form": form,
        "refusal": refusal,
        "count": counts.count,
        "count_text": f"{counts.count:,}",
        "languages": [
            (labels.get(code, code), f"{n:,}") for code, n in counts.by_language.items() if n
        ],
        "needs_approval": counts.count > settings.RALLY_APPROVAL_THRESHOLD,
        "threshold_text": f"{settings.RALLY_APPROVAL_THRESHOLD:,}",
        # What the campaigner confirms: the POST acts only on the mailing as it is now.
        "shown_version": mailing.updated_at.isoformat(),
        "change_url": _change_url(mailing),
        "ab_labels": ab_labels(mailing) if mailing.ab_test_share else [],
        # The organisation's defaults that decide who is left out, stated before anything goes.
        "protection": mailing_list_protection(mailing),
        **extra,
    }
    return TemplateResponse(request, f"admin/mailings/mailing/{template}", context)


def _campaigner_zone(request) -> ZoneInfo:
    """The zone this campaigner last scheduled in, else the one Rally is set to offer first."""
    return ZoneInfo(request.session.get(SESSION_ZONE_KEY) or settings.RALLY_CAMPAIGNER_TIMEZONE)


def _requested_message(mailing: Mailing, outcome: SendRequestOutcome, zone: ZoneInfo) -> str:
    reach = f"{outcome.recipient_count:,} supporters"
    when = _scheduled_text(mailing, zone)
    if outcome.status == Status.SENDING:
        return f"“{mailing}” is being sent to {reach}."
    if outcome.status == Status.SCHEDULED:
        return f"“{mailing}” will be sent to {reach} on {when}."
    later = f" It goes on {when} if approved by then." if when else ""
    return (
        f"“{mailing}” would reach {reach}, more than {settings.RALLY_APPROVAL_THRESHOLD:,}: "
        f"it waits for another campaigner to approve it.{later}"
    )


def _scheduled_text(mailing: Mailing, zone: ZoneInfo) -> str:
    return moment_text(mailing.scheduled_at, zone) if mailing.scheduled_at else ""


def _change_url(mailing: Mailing) -> str:
    return reverse("admin:mailings_mailing_change", args=[mailing.pk])
