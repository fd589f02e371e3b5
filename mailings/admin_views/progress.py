"""The progress page of a mailing: its figures, a JSON twin of them, and pause, resume, cancel.

MailingAdmin.get_urls routes here; each view is built with `as_view(model_admin=…)` so that it
asks the MailingAdmin who may see and who may act, as the admin's own pages do.
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404

from mailings.admin_views.ab_test import ab_test_panel
from mailings.admin_views.base import MailingAdminView
from mailings.models import Delivery, Mailing
from mailings.selectors import (
    MailingProgress,
    MailingResults,
    mailing_progress,
    mailing_results,
    mailing_skip_reasons,
)
from mailings.sending import mailing_cancel, mailing_pause, mailing_resume
from mailings.sending.reconcile import mailing_unknown_summary

Status = Mailing.Status

# The page reloads itself while its figures can still change without anyone acting on it.
REFRESH_SECONDS = 5
REFRESHING_STATUSES = frozenset(
    {Status.AWAITING_APPROVAL, Status.SCHEDULED, Status.SENDING, Status.PAUSED}
)


@dataclass(frozen=True)
class MailingControl:
    """A button on the progress page: the service it calls and what to tell the campaigner."""

    label: str
    service: Callable[..., bool]
    # Where the button is shown. The service has the last word: it refuses any other status
    # by its conditional UPDATE, and the page then says why with `refused`.
    shown_in: frozenset[str]
    done: str
    refused: str
    # A page that asks once more before acting, for what cannot be undone.
    confirm_template: str | None = None


MAILING_CONTROLS = {
    "pause": MailingControl(
        label="Pause",
        service=mailing_pause,
        shown_in=frozenset({Status.SENDING}),
        done="is paused",
        refused="only a sending mailing can pause",
    ),
    "resume": MailingControl(
        label="Resume",
        service=mailing_resume,
        shown_in=frozenset({Status.PAUSED}),
        done="is sending again",
        refused="only a paused one resumes",
    ),
    "cancel": MailingControl(
        label="Cancel…",
        service=mailing_cancel,
        shown_in=frozenset(
            {
                Status.DRAFT,
                Status.SCHEDULED,
                Status.SENDING,
                Status.WAITING_FOR_WINNER,
                Status.PAUSED,
            }
        ),
        done="is cancelled: what was not sent yet will never be sent",
        refused="only a mailing that has not finished can be cancelled",
        confirm_template="admin/mailings/mailing/progress_cancel.html",
    ),
}


class MailingProgressPageView(MailingAdminView):
    """Show how far a mailing's send has got, with the buttons the user may press."""

    http_method_names = ["get"]

    def get(self, request, mailing_id: int):
        mailing = self.viewable_mailing(request, mailing_id)
        progress = mailing_progress(mailing)
        results = mailing_results(mailing) if progress.sent else None
        may_control = self.model_admin.has_control_permission(request)
        controls = {
            action: control
            for action, control in MAILING_CONTROLS.items()
            if may_control and mailing.status in control.shown_in
        }
        can_refresh = mailing.status in REFRESHING_STATUSES
        # Screen-reader users and anyone reading closely can stop the reloading (?refresh=off).
        refreshing = can_refresh and request.GET.get("refresh") != "off"
        return self.render(
            request,
            "admin/mailings/mailing/progress.html",
            mailing,
            title=f"Progress of “{mailing}”",
            progress=progress,
            unknown=mailing_unknown_summary(mailing) if progress.unknown else None,
            results=results,
            result_rows=result_rows(results) if results else [],
            eta=eta_in_words(progress),
            skipped_text=skipped_in_words(mailing) if progress.skipped else "",
            controls=controls,
            refresh_seconds=REFRESH_SECONDS,
            can_refresh=can_refresh,
            refreshing=refreshing,
            snapshot_in_progress=(
                mailing.status == Status.SENDING and mailing.audience_snapshot_at is None
            ),
            ab_test=ab_test_panel(
                mailing, may_decide=self.model_admin.has_send_permission(request)
            ),
        )


class MailingProgressJsonView(MailingAdminView):
    """Return the progress figures as JSON: the fields of MailingProgress, and `results`.

    Operators' scripts read it, so its keys are a contract (see MailingProgress); `results` is
    the fields of MailingResults but `sent` (a top-level key already), `opens` named
    `opens_approximate`, and `links` a list of objects.
    """

    http_method_names = ["get"]

    def get(self, request, mailing_id: int):
        mailing = self.viewable_mailing(request, mailing_id)
        figures = asdict(mailing_progress(mailing))
        results = asdict(mailing_results(mailing))
        del results["sent"]
        results["opens_approximate"] = results.pop("opens")
        results["links"] = list(results["links"])
        return JsonResponse({**figures, "results": results})


class MailingControlView(MailingAdminView):
    """Pause, resume or cancel a mailing from its progress page, then go back to it."""

    http_method_names = ["post"]

    def post(self, request, mailing_id: int):
        # Checked here as well as by hiding the buttons: a forged POST must change nothing.
        if not self.model_admin.has_control_permission(request):
            raise PermissionDenied
        mailing = get_object_or_404(Mailing, pk=mailing_id)
        action = request.POST.get("action", "")
        control = MAILING_CONTROLS.get(action)
        if control is None:
            return HttpResponseBadRequest("Unknown action.")
        # Nothing to confirm where the service would refuse: it says why below.
        asks_first = control.confirm_template and mailing.status in control.shown_in
        if asks_first and request.POST.get("confirmed") != "yes":
            return self.render(
                request,
                control.confirm_template,
                mailing,
                title=f"{control.label.rstrip('…')} “{mailing}”?",
                action=action,
                control=control,
                progress=mailing_progress(mailing),
            )
        if control.service(mailing_id=mailing.pk, actor=request.user):
            self.model_admin.message_user(request, f"“{mailing}” {control.done}.", messages.SUCCESS)
        else:
            mailing.refresh_from_db(fields=["status"])
            status = mailing.get_status_display().lower()
            self.model_admin.message_user(
                request, f"“{mailing}” is {status}: {control.refused}.", messages.ERROR
            )
        return HttpResponseRedirect(self.progress_url(mailing))


@dataclass(frozen=True)
class ResultRow:
    """A line of the results table: a figure and its share of the messages sent."""

    label: str
    slug: str
    count: int
    percent: float | None


def result_rows(results: MailingResults) -> list[ResultRow]:
    """Return the results table's lines, in the order a campaigner reads them."""
    rows = [
        ("Delivered", "delivered", results.delivered),
        ("Hard bounces", "hard-bounces", results.hard_bounces),
        ("Soft bounces", "soft-bounces", results.soft_bounces),
        ("Complaints (marked as spam)", "complaints", results.complaints),
        ("Rejected by the ESP", "rejected", results.rejected),
        ("Opens (approximate)", "opens", results.opens),
        ("Unique clicks", "unique-clicks", results.unique_clicks),
        ("Signatures credited to this mailing", "signatures", results.signatures),
    ]
    return [
        ResultRow(label, slug, count, results.percent_of_sent(count)) for label, slug, count in rows
    ]


def skipped_in_words(mailing: Mailing) -> str:
    """Say why deliveries were skipped, e.g. "12 over the daily frequency cap, 3 no longer …"."""
    labels = dict(Delivery.SkipReason.choices)
    return ", ".join(
        f"{n:,} {labels.get(reason, 'for no recorded reason').lower()}"
        for reason, n in mailing_skip_reasons(mailing).items()
    )


def eta_in_words(progress: MailingProgress) -> str:
    """Say when the send should be done, or why that cannot be said."""
    if not progress.pending:
        return "none, nothing is left to send"
    if progress.eta_seconds is None:
        return "not known, nothing was sent in the last minute"
    return f"about {duration_in_words(progress.eta_seconds)}"


def duration_in_words(seconds: int) -> str:
    """Say how long `seconds` is in its two largest units, e.g. "2 hours 5 minutes"."""
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    units = [(hours, "hour"), (minutes, "minute"), (seconds, "second")]
    while len(units) > 1 and units[0][0] == 0:
        units.pop(0)
    largest_two = [(n, unit) for n, unit in units[:2] if n] or units[:1]
    return " ".join(f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in largest_two)
