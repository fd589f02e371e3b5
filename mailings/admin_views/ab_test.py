"""A mailing's A/B test on its progress page: how each variant is doing, pick a winner, stop.

Picking and stopping need the send permission: choosing what the rest of the audience gets is
sending it.
"""

from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404

from mailings.admin_views.base import MailingAdminView
from mailings.models import Mailing
from mailings.reports.selectors import variant_subjects
from mailings.sending import MailingStateError
from mailings.sending.ab_test import (
    OPEN,
    ab_decision_compute,
    ab_test_figures,
    mailing_ab_decide,
    mailing_ab_stop,
)

DECIDABLE = (Mailing.Status.SENDING, Mailing.Status.WAITING_FOR_WINNER)


@dataclass(frozen=True)
class VariantRow:
    label: str
    subject: str
    sent: int
    successes: int
    rate_percent: str


def ab_test_panel(mailing: Mailing, *, may_decide: bool) -> dict | None:
    """Return what the progress page shows of a mailing's A/B test, or None without one."""
    if mailing.ab_test_share is None:
        return None
    subjects = variant_subjects(mailing)
    figures = ab_test_figures(mailing)
    live = ab_decision_compute(mailing, figures=figures)
    is_open = mailing.ab_status in OPEN or not mailing.ab_status
    return {
        "rows": [
            VariantRow(
                label=variant.label,
                subject=subjects.get(variant.label, mailing.subject),
                sent=variant.sent,
                successes=variant.successes,
                rate_percent=f"{variant.rate:.2%}",
            )
            for variant in figures
        ],
        "metric": mailing.get_ab_metric_display(),
        "opens_warning": mailing.ab_metric == Mailing.ABMetric.OPENS,
        "leader": live.leader,
        "confidence_percent": f"{live.confidence:.1%}",
        "required_percent": f"{float(mailing.ab_confidence):.0%}",
        "decided": mailing.ab_decision,
        "decided_confidence_percent": (
            f"{mailing.ab_decision['confidence']:.1%}"
            if mailing.ab_decision.get("confidence") is not None
            else ""
        ),
        "may_pick": may_decide and is_open and mailing.status in DECIDABLE,
        "may_stop": may_decide and is_open and mailing.ab_status != "",
    }


class MailingABTestView(MailingAdminView):
    """Pick an A/B test's winner now, or stop the test, from the progress page."""

    http_method_names = ["post"]

    def post(self, request, mailing_id: int):
        # Checked here as well as by hiding the buttons: a forged POST must change nothing.
        if not self.model_admin.has_send_permission(request):
            raise PermissionDenied
        mailing = get_object_or_404(Mailing, pk=mailing_id)
        action = request.POST.get("action", "")
        if action == "pick":
            try:
                decision = mailing_ab_decide(
                    mailing_id=mailing.pk, winner=request.POST.get("winner", ""), actor=request.user
                )
            except MailingStateError as error:
                self.model_admin.message_user(request, str(error), messages.ERROR)
            else:
                if decision.held_because:
                    self.model_admin.message_user(
                        request,
                        f"{decision.winner} was not sent: the test drew {decision.held_because}.",
                        messages.ERROR,
                    )
                else:
                    self.model_admin.message_user(
                        request,
                        f"{decision.winner} goes to the rest of the audience now.",
                        messages.SUCCESS,
                    )
        elif action == "stop":
            if mailing_ab_stop(mailing_id=mailing.pk, actor=request.user):
                self.model_admin.message_user(
                    request,
                    f"The A/B test of “{mailing}” is stopped: the rest of the audience is not "
                    "sent.",
                    messages.SUCCESS,
                )
            else:
                self.model_admin.message_user(
                    request, f"“{mailing}” has no A/B test that can be stopped now.", messages.ERROR
                )
        else:
            return HttpResponseBadRequest("Unknown action.")
        return HttpResponseRedirect(self.progress_url(mailing))
