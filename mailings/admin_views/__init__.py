"""The mailing's own admin pages beside its change form, one module per page, wired one way.

Every page is listed in MAILING_ADMIN_PAGES and mounted by `mailing_admin_urls` under
/admin/mailings/mailing/, inside the admin site's `admin_view` (which checks only that the user
is staff: each page checks its own permission). A page is a function taking
`(request, …url arguments, *, model_admin)`, or a View class whose `model_admin` is set by
as_view. Its URL name is `admin:mailings_mailing_<name>`.
"""

from functools import partial

from django.urls import URLPattern, path

from mailings.admin_views import ab_test, preview, progress, report, send
from mailings.admin_views.audience import audience_json_view

MAILING_ADMIN_PAGES = [
    # The audience's count as JSON: a mailing's saved audience, and the add form's, which has
    # no mailing yet.
    ("<int:mailing_id>/audience.json", audience_json_view, "audience"),
    ("audience.json", audience_json_view, "audience_add"),
    # The progress page, the same figures as JSON for operators' scripts, and the
    # pause/resume/cancel buttons.
    ("<int:mailing_id>/progress/", progress.MailingProgressPageView, "progress"),
    ("<int:mailing_id>/progress.json", progress.MailingProgressJsonView, "progress_json"),
    ("<int:mailing_id>/progress/control/", progress.MailingControlView, "progress_control"),
    # What the mailing achieved: its figures over time and by link, language, variant and
    # mailbox domain; and the same as JSON.
    ("<int:mailing_id>/report/", report.MailingReportPageView, "report"),
    ("<int:mailing_id>/report.json", report.MailingReportJsonView, "report_json"),
    # Pick an A/B test's winner, or stop the test (POST only).
    ("<int:mailing_id>/ab-test/", ab_test.MailingABTestView, "ab_test"),
    # Preview as a supporter, and [TEST] copies.
    ("<int:mailing_id>/preview/", preview.mailing_preview_view, "preview"),
    ("<int:mailing_id>/test-send/", preview.mailing_test_send_view, "test_send"),
    # Send with confidence: send, schedule and approve pages that state the count and take it
    # typed back, and unschedule (POST only).
    ("<int:mailing_id>/send/", send.send_view, "send"),
    ("<int:mailing_id>/schedule/", send.schedule_view, "schedule"),
    ("<int:mailing_id>/unschedule/", send.unschedule_view, "unschedule"),
    ("<int:mailing_id>/approve/", send.approve_view, "approve"),
]


def mailing_admin_urls(model_admin) -> list[URLPattern]:
    """Return the URL patterns of every page in MAILING_ADMIN_PAGES, for MailingAdmin.get_urls."""
    prefix = f"{model_admin.opts.app_label}_{model_admin.opts.model_name}"
    return [
        path(
            route,
            model_admin.admin_site.admin_view(_bound(view, model_admin)),
            name=f"{prefix}_{name}",
        )
        for route, view, name in MAILING_ADMIN_PAGES
    ]


def _bound(view, model_admin):
    if isinstance(view, type):
        return view.as_view(model_admin=model_admin)
    return partial(view, model_admin=model_admin)
