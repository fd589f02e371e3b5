from functools import partial

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.templatetags.admin_urls import admin_urlname
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from .admin_views import send as send_pages
from .admin_views.preview import mailing_preview_view, mailing_test_send_view
from .admin_views.progress import (
    MailingControlView,
    MailingProgressJsonView,
    MailingProgressPageView,
)
from .compose import sanitize_mailing_html
from .models import Delivery, Mailing, MailingAuditEntry, OutboxMessage, TrackingEvent
from .rendering import MERGE_FIELDS, compile_mailing, compile_merge_template
from .selectors import mailing_delivery_counts
from .senders import Sender, allowed_senders, sender_validate
from .services import mailing_audit_record, mailing_cancel, mailing_pause, mailing_resume
from .templatetags.merge_tags import MERGE_TAGS

CONTENT_FIELDS = (
    "campaign", "petition", "name", "subject", "preheader", "from_name", "from_email",
    "reply_to", "html_body", "text_body",
)  # fmt: skip
AUDIENCE_FIELDS = (
    "audience_include_tags", "audience_exclude_tags", "audience_signed_petition",
    "audience_not_signed_petition", "audience_language", "audience_country",
)  # fmt: skip


class MailingAdminForm(forms.ModelForm):
    """Check the sender, merge fields and layout when the mailing is saved, not when it is sent.

    Nothing is saved while any check fails; each error names the campaigner's line.
    """

    sender = forms.ChoiceField(
        help_text="The organisation's sending addresses (RALLY_SENDERS): mail from any other "
        "domain fails receivers' DMARC checks and goes to spam."
    )

    class Meta:
        model = Mailing
        fields = "__all__"  # noqa: DJ007 -- the ModelAdmin chooses the fields shown
        help_texts = {
            "subject": 'May use merge fields, e.g. {{ first_name|default:"Friend" }}, join us.',
            "preheader": "The preview line inboxes show after the subject; may use merge fields.",
            # The admin shows help text as HTML: a bare <style> here would swallow the page.
            "html_body": "HTML with merge fields such as {{ first_name }}. A &lt;style&gt; is "
            "inlined into the elements it styles; the layout adds the preheader and a footer "
            "with the organisation's address and an unsubscribe link.",
            "text_body": "Leave empty to have it made from the HTML, links shown as URLs; the "
            "footer is added either way.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The sender is chosen whole; the model keeps its three fields, filled in clean().
        for name in ("from_name", "from_email", "reply_to"):
            self.fields.pop(name, None)
        if "text_body" in self.fields:
            self.fields["text_body"].required = False
        self.senders = {sender.key: sender for sender in allowed_senders()}
        mailing = self.instance
        current = Sender(mailing.from_name, mailing.from_email, mailing.reply_to)
        if mailing.from_email:
            # A sender no longer on the list stays selectable, so the form can say what is wrong.
            self.senders.setdefault(current.key, current)
        self.fields["sender"].choices = [(key, s.label) for key, s in self.senders.items()]
        self.fields["sender"].initial = (
            current.key if mailing.from_email else next(iter(self.senders), None)
        )
        if mailing.pk and mailing.status not in (Mailing.Status.DRAFT, Mailing.Status.SCHEDULED):
            self.fields["sender"].disabled = True

    def clean_sender(self) -> str:
        key = self.cleaned_data["sender"]
        if not self.fields["sender"].disabled:
            sender_validate(email=self.senders[key].email)
        return key

    def clean_subject(self) -> str:
        subject = self.cleaned_data["subject"]
        compile_merge_template(subject, html=False)
        return subject

    def clean_preheader(self) -> str:
        preheader = self.cleaned_data["preheader"]
        # Shown inside the HTML, so checked as HTML.
        compile_merge_template(preheader, html=True)
        return preheader

    def clean_text_body(self) -> str:
        text = self.cleaned_data["text_body"]
        compile_merge_template(text, html=False)
        return text

    def clean_html_body(self) -> str:
        html = self.cleaned_data["html_body"]
        # On the source as written, so that an error's line is the campaigner's line.
        compile_merge_template(html, html=True)
        return sanitize_mailing_html(html)

    def clean(self):
        cleaned_data = super().clean()
        sender = self.senders.get(cleaned_data.get("sender"))
        if sender is not None and not self.fields["sender"].disabled:
            self.instance.from_name = sender.name
            self.instance.from_email = sender.email
            self.instance.reply_to = sender.reply_to
        parts = ("subject", "preheader", "html_body", "text_body")
        if all(part in cleaned_data for part in parts):
            # The layout and the plain text made from the HTML, as the send will compile them.
            try:
                compile_mailing(**{part: cleaned_data[part] for part in parts})
            except ValidationError as error:
                self.add_error(None, error)
        return cleaned_data


@admin.register(Mailing)
class MailingAdmin(admin.ModelAdmin):
    form = MailingAdminForm
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
            {"fields": AUDIENCE_FIELDS},
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
        info = f"{self.opts.app_label}_{self.opts.model_name}"

        def page(route, view, name):
            wrapped = self.admin_site.admin_view(partial(view, self))
            return path(route, wrapped, name=f"{info}_{name}")

        def class_page(route, view_class, name):
            wrapped = self.admin_site.admin_view(view_class.as_view(model_admin=self))
            return path(route, wrapped, name=f"{info}_{name}")

        return [
            # The progress page (mailings/admin_views/progress.py): the page, the same figures
            # as JSON for operators' scripts, and the pause/resume/cancel buttons.
            class_page("<int:mailing_id>/progress/", MailingProgressPageView, "progress"),
            class_page("<int:mailing_id>/progress.json", MailingProgressJsonView, "progress_json"),
            class_page(
                "<int:mailing_id>/progress/control/", MailingControlView, "progress_control"
            ),
            # Preview as a supporter, and [TEST] copies (mailings/admin_views/preview.py).
            page("<int:mailing_id>/preview/", mailing_preview_view, "preview"),
            page("<int:mailing_id>/test-send/", mailing_test_send_view, "test_send"),
            # Send with confidence (mailings/admin_views/send.py): send, schedule and approve
            # pages that state the count and take it typed back, and unschedule (POST only).
            *(
                path(
                    f"<int:mailing_id>/{page}/",
                    self.admin_site.admin_view(partial(view, model_admin=self)),
                    name=f"{info}_{page}",
                )
                for page, view in [
                    ("send", send_pages.send_view),
                    ("schedule", send_pages.schedule_view),
                    ("unschedule", send_pages.unschedule_view),
                    ("approve", send_pages.approve_view),
                ]
            ),
            *super().get_urls(),
        ]

    def get_readonly_fields(self, request, obj=None):
        # The time is set on the schedule page, in the campaigner's time zone.
        readonly = ["merge_field_help", "status", "status_reason", "scheduled_at", "started_at",
                    "finished_at", "progress"]  # fmt: skip
        if obj is not None and obj.status != Mailing.Status.DRAFT:
            # What went out must stay what the ledger says went out, and a scheduled send what
            # was confirmed (and approved): unschedule it to edit it.
            readonly += [*CONTENT_FIELDS, *AUDIENCE_FIELDS]
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
        return format_html('{} · <a href="{}">Progress page</a>', summary, self._progress_url(obj))

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
