"""A mailing's report (a page and its JSON twin), and mailings compared side by side.

The report is read from the counters alone (mailings/reports/selectors.py). MailingAdmin
routes the report; ReportAdmin (mailings/admin.py) the comparison, under
/admin/mailings/report/. Both ask for mailings.view_mailing, as every page of a mailing does.
"""

import csv
import re
from datetime import datetime

from django.contrib.admin.templatetags.admin_urls import admin_urlname
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from mailings.admin_views.base import MailingAdminView
from mailings.models import Mailing
from mailings.reports.charts import cumulative_chart, point_label, series_values
from mailings.reports.selectors import (
    HEADLINE,
    SERIES,
    BreakdownRow,
    ComparedMailing,
    MailingReport,
    mailing_report,
    mailings_compared,
)
from mailings.sending.sunset import mailing_sunset_summary
from supporters.spreadsheets import csv_safe

# JSON names the figures by these where they differ from the counters': opens are labelled.
JSON_NAMES = {"opens": "opens_approximate"}
# Mailings a comparison takes at most: a table a person can read, and a query of known size.
COMPARE_MAX = 10
# The figures of the comparison's table and CSV, each beside its rate per 1,000 sent.
COMPARED_FIGURES = [figure for figure, _ in HEADLINE if figure != "sent"]


def json_name(figure: str) -> str:
    return JSON_NAMES.get(figure, figure)


def report_as_json(report: MailingReport) -> dict:
    """Return report.json: the headline figures, their course over time, and the breakdowns.

    Its keys are a contract that scripts rely on; the figures mean what the ledger says
    (mailings/report_figures.py).
    """
    subjects = report.variant_subjects
    return {
        "mailing_id": report.mailing.pk,
        "name": report.mailing.name,
        "started_at": _iso(report.mailing.started_at),
        **{json_name(figure): report.totals[figure] for figure, _ in HEADLINE},
        "clicks": report.totals["clicks"],
        "per_thousand": {
            json_name(figure): report.per_thousand(figure) for figure, _ in HEADLINE[1:]
        },
        "series": [
            {"at": _iso(point.at), **{name: getattr(point, name) for name, _, _ in SERIES}}
            for point in report.series
        ],
        "links": [
            {
                "index": link.index,
                "url": link.url,
                "clicks": link.clicks,
                "unique_clicks": link.unique_clicks,
            }
            for link in report.links
        ],
        "by_language": [
            {"language": row.key, "label": row.label, **_breakdown_json(row)}
            for row in report.by_language
        ],
        "by_domain": [
            {"domain": row.key, "label": row.label, **_breakdown_json(row)}
            for row in report.by_domain
        ],
        "variants": [
            {"label": row.key, "subject": subjects.get(row.key), **_breakdown_json(row)}
            for row in report.variants
        ],
        "ab": report.ab,
    }


def _breakdown_json(row: BreakdownRow) -> dict:
    return {
        **{json_name(figure): row.figures[figure] for figure, _ in HEADLINE},
        "per_thousand": {json_name(figure): row.per_thousand(figure) for figure, _ in HEADLINE[1:]},
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


class MailingReportPageView(MailingAdminView):
    """Show what a mailing achieved: the figures, a chart of them over time, breakdowns."""

    http_method_names = ["get"]

    def get(self, request, mailing_id: int):
        mailing = self.viewable_mailing(request, mailing_id)
        report = mailing_report(mailing)
        totals = report.totals
        chart = cumulative_chart(
            element_id="report-chart",
            title=f"“{mailing}” over time",
            description=(
                "Cumulative deliveries, people who clicked, signatures and unsubscribes, by "
                "the hour for three days after sending began, then by the day. By the end: "
                f"{totals['delivered']:,} delivered, {totals['unique_clicks']:,} clicked, "
                f"{totals['signatures']:,} signatures, {totals['unsubscribes']:,} unsubscribes."
            ),
            series={label: series_values(report.series, name) for name, _, label in SERIES},
        )
        return self.render(
            request,
            "admin/mailings/mailing/report.html",
            mailing,
            title=f"Report of “{mailing}”",
            report=report,
            headline=[
                (label, figure, totals[figure], report.per_thousand(figure))
                for figure, label in HEADLINE[1:]
            ],
            chart=chart,
            series_columns=[label for _, _, label in SERIES],
            series_rows=[
                (point_label(n), point.at, [getattr(point, name) for name, _, _ in SERIES])
                for n, point in enumerate(report.series, start=1)
            ],
            breakdown_columns=[(figure, label) for figure, label in HEADLINE],
            ab_confidence_percent=(
                f"{report.ab['confidence']:.1%}"
                if report.ab and report.ab["confidence"] is not None
                else ""
            ),
            progress_url=self.progress_url(mailing),
            sunset=mailing_sunset_summary(mailing),
            compare_url=reverse(
                "admin:mailings_report_compare", current_app=self.model_admin.admin_site.name
            ),
        )


class MailingReportJsonView(MailingAdminView):
    """Return a mailing's report as JSON (report_as_json)."""

    http_method_names = ["get"]

    def get(self, request, mailing_id: int):
        mailing = self.viewable_mailing(request, mailing_id)
        return JsonResponse(report_as_json(mailing_report(mailing)))


class BadComparison(ValueError):
    """The ids of a comparison do not name mailings to compare; the message says why."""


def compared_mailing_ids(raw: str) -> list[int]:
    """Return the distinct mailing ids of `?ids=1,2,…` in order; raise BadComparison if bad."""
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if not parts:
        raise BadComparison(
            "Choose the mailings to compare: ?ids= takes their ids, separated by commas."
        )
    bad = [part for part in parts if not re.fullmatch(r"[0-9]{1,18}", part)]
    if bad:
        raise BadComparison(
            f"Mailing ids are whole numbers; “{bad[0][:40]}” is not one. "
            "Separate the ids with commas, as in ?ids=3,7."
        )
    ids = list(dict.fromkeys(int(part) for part in parts))
    if len(ids) > COMPARE_MAX:
        raise BadComparison(
            f"Compare at most {COMPARE_MAX} mailings at once; {len(ids)} were asked for."
        )
    return ids


class ReportCompareView(MailingAdminView):
    """Show mailings side by side (their rates, their signatures over time), or as CSV."""

    http_method_names = ["get"]
    template = "admin/mailings/report/compare.html"

    def get(self, request):
        if not self.model_admin.has_view_permission(request):
            raise PermissionDenied
        output = request.GET.get("format", "html")
        try:
            if output not in ("html", "csv"):
                raise BadComparison(f"The format is html or csv, not “{output[:20]}”.")
            ids = compared_mailing_ids(request.GET.get("ids", ""))
            found = Mailing.objects.in_bulk(ids)
            missing = [mailing_id for mailing_id in ids if mailing_id not in found]
            if missing:
                raise BadComparison(
                    f"No mailing has the id {', '.join(map(str, missing))}: "
                    "choose the mailings from the list of reports."
                )
        except BadComparison as error:
            return self._render(request, error=str(error), status=400)
        compared = mailings_compared([found[mailing_id] for mailing_id in ids])
        if output == "csv":
            return comparison_csv(compared)
        return self._render(request, compared=compared, ids=",".join(map(str, ids)))

    def _render(self, request, *, status: int = 200, **context):
        admin_site = self.model_admin.admin_site
        request.current_app = admin_site.name
        compared = context.get("compared", [])
        chart = cumulative_chart(
            element_id="compare-chart",
            title="Signatures by hours since sending began",
            description=(
                "Cumulative signatures credited to each mailing, by the hour for three days "
                "after its sending began, then by the day. By the end: "
                + "; ".join(f"“{c.mailing}” {c.totals['signatures']:,}" for c in compared)
                + "."
            ),
            series={f"“{c.mailing}”": series_values(c.signatures, "signatures") for c in compared},
        )
        longest = max((len(c.signatures) for c in compared), default=0)
        return TemplateResponse(
            request,
            self.template,
            {
                **admin_site.each_context(request),
                "opts": self.model_admin.opts,
                "title": "Compare mailings",
                "compared": compared,
                "rows": [_compared_row(c, self.model_admin) for c in compared],
                "figures": [(figure, label) for figure, label in HEADLINE if figure != "sent"],
                "chart": chart,
                "chart_rows": [
                    (
                        point_label(n),
                        [
                            c.signatures[n - 1].signatures if n <= len(c.signatures) else None
                            for c in compared
                        ],
                    )
                    for n in range(1, longest + 1)
                ],
                "changelist_url": reverse(
                    admin_urlname(self.model_admin.opts, "changelist"), current_app=admin_site.name
                ),
                **context,
            },
            status=status,
        )


def _compared_row(compared: ComparedMailing, model_admin) -> dict:
    mailing = compared.mailing
    return {
        "mailing": mailing,
        "report_url": reverse(
            "admin:mailings_mailing_report",
            args=[mailing.pk],
            current_app=model_admin.admin_site.name,
        ),
        "sent": compared.totals["sent"],
        "figures": [
            (compared.totals[figure], compared.per_thousand(figure)) for figure in COMPARED_FIGURES
        ],
    }


def comparison_csv(compared: list[ComparedMailing]) -> HttpResponse:
    """Return the comparison's table as a CSV download: a row per mailing, counts and rates."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    ids = "-".join(str(c.mailing.pk) for c in compared)
    response["Content-Disposition"] = f'attachment; filename="mailings-compared-{ids}.csv"'
    writer = csv.writer(response)
    header = ["mailing_id", "name", "started_at", "sent"]
    for figure in COMPARED_FIGURES:
        header += [json_name(figure), f"{json_name(figure)}_per_thousand"]
    writer.writerow(header)
    for c in compared:
        row = [c.mailing.pk, csv_safe(c.mailing.name), _iso(c.mailing.started_at) or ""]
        row.append(c.totals["sent"])
        for figure in COMPARED_FIGURES:
            rate = c.per_thousand(figure)
            row += [c.totals[figure], "" if rate is None else rate]
        writer.writerow(row)
    return response
