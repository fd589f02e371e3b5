from django.contrib import admin, messages
from django.contrib.admin.templatetags.admin_urls import admin_urlname
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from js_asset import Media

from mailings import segments_admin  # noqa: F401 -- registers the saved segments' admin
from mailings.admin_views import mailing_admin_urls
from mailings.admin_views.audience import recipients_html
from mailings.admin_views.report import COMPARE_MAX, ReportCompareView
from mailings.audit import mailing_audit_record
from mailings.content.rendering import MERGE_FIELDS
from mailings.forms import (
    MailingAdminForm,
    MailingVariantForm,
    MailingVariantFormSet,
    MailingVersionForm,
)
from mailings.models import (
    Delivery,
    Mailing,
    MailingAuditEntry,
    MailingVariant,
    MailingVersion,
    OutboxMessage,
    Report,
    TrackingEvent,
)
from mailings.selectors import mailing_delivery_counts
from mailings.sending import mailing_cancel, mailing_pause, mailing_resume
from mailings.templatetags.merge_tags import MERGE_TAGS
from supporters.models import Language

CONTENT_FIELDS = (
    "campaign", "petition", "name", "subject", "preheader", "from_name", "from_email",
    "reply_to", "html_body", "text_body",
)  # fmt: skip
AB_TEST_FIELDS = (
    "ab_test_share", "ab_wait_hours", "ab_metric", "ab_confidence", "ab_min_deliveries",
    "ab_without_winner",
)  # fmt: skip
AUDIENCE_FIELDS = (
    "audience_segment", "audience_include_tags", "audience_exclude_tags",
    "audience_signed_petition", "audience_not_signed_petition", "audience_language",
    "audience_country", "purpose", "include_dormant",
)  # fmt: skip


class DraftOnlyInline:
    """An inline of a mailing's content, editable while the mailing is a draft only.

    What went out must stay what the ledger says went out, and a scheduled send what was
    confirmed (and approved): unschedule it to edit it (see MailingAdmin.get_readonly_fields).
    """

    def _editable(self, obj) -> bool:
        return obj is None or obj.status == Mailing.Status.DRAFT

    def has_add_permission(self, request, obj=None) -> bool:
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._editable(obj) and super().has_delete_permission(request, obj)


class MailingVersionInline(DraftOnlyInline, admin.StackedInline):
    """The appeal in another language; a supporter gets the version in theirs, if written."""

    model = MailingVersion
    form = MailingVersionForm
    extra = 0
    max_num = len(Language.choices)
    verbose_name = "language version"
    verbose_name_plural = "Language versions: supporters whose language has none get the above"


class MailingVariantInline(DraftOnlyInline, admin.TabularInline):
    """Variants B to D of an A/B test: what each changes from the mailing as written (A)."""

    model = MailingVariant
    form = MailingVariantForm
    formset = MailingVariantFormSet
    extra = 0
    verbose_name = "A/B test variant"
    verbose_name_plural = (
        "A/B test variants: A is the mailing as written; each variant changes its subject, "
        "preheader or sender name (one row per language version it changes)"
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    """A record the services write and nobody edits in the admin: listed and read only."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Mailing)
class MailingAdmin(admin.ModelAdmin):
    form = MailingAdminForm
    inlines = [MailingVersionInline, MailingVariantInline]
    list_display = (
        "name", "campaign", "status", "subject", "started_at", "finished_at", "progress_link",
    )  # fmt: skip
    list_filter = ("status", "campaign")
    search_fields = ("name", "subject")
    filter_horizontal = ("audience_include_tags", "audience_exclude_tags")
    actions = ["send_now", "schedule", "pause", "resume", "cancel"]
    fieldsets = (
        (None, {"fields": ("campaign", "petition", "name")}),
        (
            "Message",
            {
                "fields": (
                    "subject",
                    "preheader",
                    "sender",
                    "html_body",
                    "text_body",
                    "merge_field_help",
                ),
            },
        ),  # fmt: skip
        (
            "Audience: subscribed supporters who match every condition set",
            {"fields": (*AUDIENCE_FIELDS, "recipients")},
        ),
        (
            "A/B test: send variants to a slice of the audience, then the winner to the rest",
            {
                "classes": ["collapse"],
                "fields": AB_TEST_FIELDS,
                "description": "Leave the share empty to send one version to everyone. The "
                "winner is chosen by what each variant's recipients did; signatures per "
                "message sent are the surest sign of a better appeal.",
            },
        ),
        (
            "Sending",
            {
                "fields": (
                    "status",
                    "status_reason",
                    "scheduled_at",
                    "started_at",
                    "finished_at",
                    "progress",
                )
            },
        ),  # fmt: skip
    )

    class Media:
        # Keeps "Recipients" live as the audience fields change; audience_count.js builds on
        # live_count.js, so that one comes first.
        js = ["mailings/live_count.js", "mailings/audience_count.js"]

    def render_change_form(self, request, context, *args, **kwargs):
        # The body editor's import map is an inline script: the page's Content-Security-Policy
        # runs it for the nonce it carries (config/settings/base.py).
        nonce = str(request.csp_nonce) if hasattr(request, "csp_nonce") else ""
        context["media"] = Media.from_media(context["media"], nonce=nonce)
        return super().render_change_form(request, context, *args, **kwargs)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        action = MailingAuditEntry.Action.EDITED if change else MailingAuditEntry.Action.CREATED
        detail = ", ".join(form.changed_data)[:500] if change else ""
        mailing_audit_record(mailing=obj, action=action, actor=request.user, detail=detail)

    # State changes need a permission of their own (Mailing.Meta.permissions), not only the
    # right to change a mailing; admin actions name them in `permissions=[…]`.
    def has_send_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("mailings.send_mailing")

    def has_control_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("mailings.control_mailing")

    def has_approve_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("mailings.approve_mailing")

    def get_urls(self):
        """Add the mailing's own pages (mailings/admin_views/) before the admin's catch-all."""
        return [*mailing_admin_urls(self), *super().get_urls()]

    def get_readonly_fields(self, request, obj=None):
        # The time is set on the schedule page, in the campaigner's time zone.
        readonly = ["merge_field_help", "status", "status_reason", "scheduled_at", "started_at",
                    "finished_at", "progress", "recipients"]  # fmt: skip
        if obj is not None and obj.status != Mailing.Status.DRAFT:
            # What went out must stay what the ledger says went out, and a scheduled send what
            # was confirmed (and approved): unschedule it to edit it.
            readonly += [*CONTENT_FIELDS, *AUDIENCE_FIELDS, *AB_TEST_FIELDS]
        return readonly

    @admin.display(description="Merge fields")
    def merge_field_help(self, obj) -> str:
        return format_html(
            "<ul>{}</ul><p>{}</p>",
            format_html_join(
                "", "<li><code>{{{{ {} }}}}</code> — {}</li>", sorted(MERGE_FIELDS.items())
            ),
            format_html(
                "Use them in the subject, preheader and both bodies. Any of them may be empty "
                "for some supporters: give a fallback with <code>{}</code>. A merge field is "
                "plain text: <code>{}</code> is refused, and so are <code>|safe</code>, "
                "<code>{{% load %}}</code>, <code>{{% include %}}</code> and any tag not in "
                "this list: {}.",
                '{{ first_name|default:"friend" }}',
                "{{ first_name.upper }}",
                ", ".join(MERGE_TAGS),
            ),
        )

    @admin.display(description="Recipients")
    def recipients(self, obj) -> str:
        return recipients_html(obj, site_name=self.admin_site.name)

    @admin.display(description="Deliveries")
    def progress(self, obj) -> str:
        if obj is None or obj.pk is None:
            return "—"
        counts = {status: n for status, n in mailing_delivery_counts(obj).items() if n}
        if counts:
            labels = dict(Delivery.Status.choices)
            summary = ", ".join(f"{labels[status]}: {n:,}" for status, n in counts.items())
        else:
            summary = "No deliveries yet."
        report_url = reverse(
            admin_urlname(self.opts, "report"), args=[obj.pk], current_app=self.admin_site.name
        )
        return format_html(
            '{} · <a href="{}">Progress page</a> · <a href="{}">Report</a>',
            summary,
            self._progress_url(obj),
            report_url,
        )

    @admin.display(description="Progress")
    def progress_link(self, obj) -> str:
        return format_html('<a href="{}">Progress</a>', self._progress_url(obj))

    def _progress_url(self, mailing: Mailing) -> str:
        return reverse(
            admin_urlname(self.opts, "progress"),
            args=[mailing.pk],
            current_app=self.admin_site.name,
        )

    @admin.action(description="Send now…", permissions=["send"])
    def send_now(self, request, queryset):
        return self._confirmation_page(request, queryset, "send")

    @admin.action(description="Schedule…", permissions=["send"])
    def schedule(self, request, queryset):
        return self._confirmation_page(request, queryset, "schedule")

    def _confirmation_page(self, request, queryset, page: str):
        """Open one mailing's send or schedule page: nothing goes out from the list unconfirmed."""
        mailing_ids = list(queryset.values_list("pk", flat=True)[:2])
        if len(mailing_ids) != 1:
            self.message_user(
                request,
                f"Select exactly one mailing to {page}: each send is confirmed on its own page, "
                "with its own count.",
                messages.ERROR,
            )
            return None
        return HttpResponseRedirect(reverse(f"admin:mailings_mailing_{page}", args=mailing_ids))

    def _change_status(self, request, queryset, service, done: str, refused: str):
        for mailing in queryset:
            if service(mailing_id=mailing.pk, actor=request.user):
                self.message_user(request, f"“{mailing}” {done}.", messages.SUCCESS)
            else:
                status = mailing.get_status_display().lower()
                self.message_user(request, f"“{mailing}” is {status}: {refused}.", messages.ERROR)

    @admin.action(description="Pause sending", permissions=["control"])
    def pause(self, request, queryset):
        self._change_status(
            request, queryset, mailing_pause, "is paused", "only a sending mailing can pause"
        )

    @admin.action(description="Resume sending", permissions=["control"])
    def resume(self, request, queryset):
        self._change_status(
            request, queryset, mailing_resume, "is sending again", "only a paused one resumes"
        )

    @admin.action(
        description="Cancel (what is not sent yet is never sent)", permissions=["control"]
    )
    def cancel(self, request, queryset):
        self._change_status(
            request, queryset, mailing_cancel, "is cancelled", "it has finished already"
        )


@admin.register(Report)
class ReportAdmin(ReadOnlyAdmin):
    """The mailings that went out, each with its report; pick some to compare them.

    Reading only: it asks for mailings.view_mailing (or change), as MailingAdmin's pages do,
    not for permissions of its own (Report is a proxy of Mailing, with none).
    """

    list_display = ("name", "campaign", "status", "started_at", "report_link")
    list_display_links = None
    list_filter = ("status", "campaign")
    search_fields = ("name", "subject")
    actions = ["compare"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(started_at__isnull=False)

    def has_view_permission(self, request, obj=None) -> bool:
        user = request.user
        return user.has_perm("mailings.view_mailing") or user.has_perm("mailings.change_mailing")

    def get_urls(self):
        """Add the comparison, /admin/mailings/report/compare/?ids=…, before the catch-all."""
        compare = self.admin_site.admin_view(ReportCompareView.as_view(model_admin=self))
        return [path("compare/", compare, name="mailings_report_compare"), *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # A report's own page is the mailing's report.
        if not object_id.isdigit():
            return super().change_view(request, object_id, form_url, extra_context)
        return HttpResponseRedirect(
            reverse(
                "admin:mailings_mailing_report", args=[object_id], current_app=self.admin_site.name
            )
        )

    @admin.display(description="Report")
    def report_link(self, obj) -> str:
        url = reverse(
            "admin:mailings_mailing_report", args=[obj.pk], current_app=self.admin_site.name
        )
        return format_html('<a href="{}">Report of “{}”</a>', url, obj)

    @admin.action(description="Compare the selected mailings")
    def compare(self, request, queryset):
        """Open the comparison of the mailings ticked (reading only, no permission of its own)."""
        ids = list(queryset.order_by("started_at").values_list("pk", flat=True)[: COMPARE_MAX + 1])
        if len(ids) > COMPARE_MAX:
            self.message_user(
                request, f"Compare at most {COMPARE_MAX} mailings at once.", messages.ERROR
            )
            return None
        url = reverse("admin:mailings_report_compare", current_app=self.admin_site.name)
        return HttpResponseRedirect(f"{url}?ids={','.join(map(str, ids))}")


@admin.register(MailingAuditEntry)
class MailingAuditEntryAdmin(ReadOnlyAdmin):
    """The audit log, read-only: the mailing services write it, nobody edits it."""

    list_display = ("created_at", "actor_name", "action", "mailing_name", "recipient_count")
    list_filter = ("action",)
    search_fields = ("mailing_name", "actor_name")
    date_hierarchy = "created_at"


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "supporter", "mailing", "variant", "status", "sent_at", "esp_status", "esp_message_id",
        "error",
    )  # fmt: skip
    list_filter = ("status", "esp_status", "variant", "mailing")
    search_fields = ("supporter__email", "esp_message_id")
    list_select_related = ("supporter", "mailing")
    raw_id_fields = ("supporter", "mailing")
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        # The ledger is written by the send queue alone.
        return False


@admin.register(TrackingEvent)
class TrackingEventAdmin(ReadOnlyAdmin):
    """ESP webhook events as received: read-only, written by mailings/feedback/ alone."""

    list_display = (
        "occurred_at", "esp", "event_type", "reject_reason", "recipient", "outcome",
        "processed_at", "delivery",
    )  # fmt: skip
    list_filter = ("esp", "event_type", "outcome")
    search_fields = ("recipient", "message_id", "event_id")
    raw_id_fields = ("delivery",)
    show_full_result_count = False


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    """The local outbox: what Rally sent while no ESP is configured (development).

    Every message in it carries a supporter's personal petition and unsubscribe links: it is
    read with its own view permission, which no role has (config/lib/roles.py), and never
    changed.
    """

    list_display = ("subject", "to", "created_at")
    search_fields = ("to", "subject")
    readonly_fields = ("to", "from_email", "subject", "headers", "created_at", "html_preview",
                       "text_body")  # fmt: skip
    exclude = ("html_body",)

    @admin.display(description="HTML")
    def html_preview(self, obj) -> str:
        # A sandboxed frame: the message's HTML can run nothing in the admin's origin.
        return format_html(
            '<iframe sandbox srcdoc="{}" style="width:100%;height:40rem;border:1px solid #ccc">'
            "</iframe>",
            obj.html_body,
        )

    def has_view_permission(self, request, obj=None) -> bool:
        # Not the default's "view or change": nobody changes a sent message.
        return request.user.has_perm("mailings.view_outboxmessage")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
