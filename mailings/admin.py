from django import forms
from django.contrib import admin, messages
from django.urls import path
from django.utils.html import format_html, format_html_join

from campaigns.richtext import sanitize_html

from .admin_views.audience import audience_json_view, recipients_html
from .models import Delivery, Mailing, MailingAuditEntry, OutboxMessage, TrackingEvent
from .rendering import MERGE_FIELDS, compile_merge_template
from .selectors import mailing_delivery_counts
from .services import (
    MailingStateError,
    mailing_audit_record,
    mailing_cancel,
    mailing_pause,
    mailing_resume,
    mailing_schedule,
    mailing_send,
)

CONTENT_FIELDS = (
    "campaign", "petition", "name", "subject", "preheader", "from_name", "from_email",
    "reply_to", "html_body", "text_body",
)  # fmt: skip
AUDIENCE_FIELDS = (
    "audience_include_tags", "audience_exclude_tags", "audience_signed_petition",
    "audience_not_signed_petition", "audience_language", "audience_country",
)  # fmt: skip


class MailingAdminForm(forms.ModelForm):
    """Check merge fields and sanitise HTML when the mailing is saved, not when it is sent."""

    class Meta:
        model = Mailing
        fields = "__all__"  # noqa: DJ007 -- the ModelAdmin chooses the fields shown

    def clean_subject(self) -> str:
        subject = self.cleaned_data["subject"]
        compile_merge_template(subject, html=False)
        return subject

    def clean_text_body(self) -> str:
        text = self.cleaned_data["text_body"]
        compile_merge_template(text, html=False)
        return text

    def clean_html_body(self) -> str:
        html = sanitize_html(self.cleaned_data["html_body"])
        compile_merge_template(html, html=True)
        return html


@admin.register(Mailing)
class MailingAdmin(admin.ModelAdmin):
    form = MailingAdminForm
    list_display = ("name", "campaign", "status", "subject", "started_at", "finished_at")
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
                    "from_name",
                    "from_email",
                    "reply_to",
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
        # Keeps "Recipients" live as the audience fields change.
        js = ["mailings/audience_count.js"]

    def get_urls(self):
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            # The audience's count as JSON (mailings/admin_views/audience.py): a mailing's
            # saved audience, and the add form's, which has no mailing yet.
            path(
                "<int:mailing_id>/audience.json",
                self.admin_site.admin_view(audience_json_view),
                {"model_admin": self},
                name=f"{info}_audience",
            ),
            path(
                "audience.json",
                self.admin_site.admin_view(audience_json_view),
                {"model_admin": self},
                name=f"{info}_audience_add",
            ),
            *super().get_urls(),
        ]

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

    def get_readonly_fields(self, request, obj=None):
        readonly = ["merge_field_help", "status", "status_reason", "started_at", "finished_at",
                    "progress", "recipients"]  # fmt: skip
        if obj is not None and obj.status not in (Mailing.Status.DRAFT, Mailing.Status.SCHEDULED):
            # What went out must stay what the ledger says went out.
            readonly += [*CONTENT_FIELDS, *AUDIENCE_FIELDS, "scheduled_at"]
        return readonly

    @admin.display(description="Merge fields")
    def merge_field_help(self, obj) -> str:
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "", "<li><code>{{{{ {} }}}}</code> — {}</li>", sorted(MERGE_FIELDS.items())
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
        if not counts:
            return "No deliveries yet."
        labels = dict(Delivery.Status.choices)
        return ", ".join(f"{labels[status]}: {n:,}" for status, n in counts.items())

    @admin.action(description="Send now", permissions=["send"])
    def send_now(self, request, queryset):
        for mailing in queryset:
            try:
                mailing_send(mailing=mailing, actor=request.user)
            except MailingStateError as error:
                self.message_user(request, str(error), messages.ERROR)
            else:
                self.message_user(request, f"“{mailing}” is being sent.", messages.SUCCESS)

    @admin.action(description="Schedule for its scheduled time", permissions=["send"])
    def schedule(self, request, queryset):
        for mailing in queryset:
            if mailing.scheduled_at is None:
                self.message_user(
                    request, f"Set a scheduled time on “{mailing}” first.", messages.ERROR
                )
                continue
            try:
                mailing_schedule(mailing=mailing, send_at=mailing.scheduled_at, actor=request.user)
            except MailingStateError as error:
                self.message_user(request, str(error), messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"“{mailing}” will be sent at {mailing.scheduled_at:%Y-%m-%d %H:%M %Z}.",
                    messages.SUCCESS,
                )

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


@admin.register(MailingAuditEntry)
class MailingAuditEntryAdmin(admin.ModelAdmin):
    """The audit log, read-only: the mailing services write it, nobody edits it."""

    list_display = ("created_at", "actor_name", "action", "mailing_name", "recipient_count")
    list_filter = ("action",)
    search_fields = ("mailing_name", "actor_name")
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("supporter", "mailing", "status", "sent_at", "esp_message_id", "error")
    list_filter = ("status", "mailing")
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
class TrackingEventAdmin(admin.ModelAdmin):
    list_display = ("event_type", "recipient", "occurred_at", "esp", "delivery")
    list_filter = ("event_type", "esp")
    search_fields = ("recipient", "event_id")
    raw_id_fields = ("delivery",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    """The local outbox: what Rally sent while no ESP is configured (development)."""

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

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return request.method == "GET"
