from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import escape, format_html

from config.lib.richtext import sanitize_html
from supporters.audit import supporter_audit_record
from supporters.models import SupporterAuditEntry

from .confirmation import signature_confirmation_send
from .exports import petition_printable_signers, petition_signatures_csv_response
from .models import Campaign, Petition, PetitionTranslation, Signature

# Who may take signers' personal data out of Rally, as a file or on paper.
SIGNATURE_EXPORT_PERMISSION = "campaigns.export_signatures"


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


class PetitionAdminForm(forms.ModelForm):
    class Meta:
        model = Petition
        fields = "__all__"  # noqa: DJ007 -- the ModelAdmin chooses the fields shown

    def clean_body(self) -> str:
        return sanitize_html(self.cleaned_data["body"])


class PetitionTranslationInline(admin.StackedInline):
    """The petition in another language; readers whose page is in it see this text."""

    model = PetitionTranslation
    extra = 0
    fields = ("language", "title", "target", "body", "consent_wording")


@admin.register(Petition)
class PetitionAdmin(admin.ModelAdmin):
    form = PetitionAdminForm
    inlines = [PetitionTranslationInline]
    # Adds "Export CSV" and "Printable list" beside "History" on the change page.
    change_form_template = "admin/campaigns/petition/change_form.html"
    list_display = (
        "title", "campaign", "language", "is_open", "confirmed_signatures",
        "unconfirmed_signatures", "goal", "created_at",
    )  # fmt: skip
    list_filter = ("is_open", "language", "requires_confirmation", "campaign")
    search_fields = ("title", "slug", "target")
    prepopulated_fields = {"slug": ("title",)}
    readonly_fields = ("embed_snippet",)
    actions = ["export_signatures_csv"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("campaign")
            .annotate(
                confirmed_count=Count(
                    "signatures", filter=Q(signatures__confirmed_at__isnull=False)
                ),
                unconfirmed_count=Count(
                    "signatures", filter=Q(signatures__confirmed_at__isnull=True)
                ),
            )
        )

    def get_urls(self):
        opts = self.opts
        return [
            path(
                "<int:petition_id>/export.csv",
                self.admin_site.admin_view(self.export_csv_view),
                name=f"{opts.app_label}_{opts.model_name}_export_csv",
            ),
            path(
                "<int:petition_id>/printable/",
                self.admin_site.admin_view(self.printable_view),
                name=f"{opts.app_label}_{opts.model_name}_printable",
            ),
            *super().get_urls(),
        ]

    def has_export_signatures_permission(self, request) -> bool:
        """Gate the export URLs and the export action (`permissions=["export_signatures"]`)."""
        return request.user.has_perm(SIGNATURE_EXPORT_PERMISSION)

    def export_csv_view(self, request, petition_id: int):
        if not self.has_export_signatures_permission(request):
            raise PermissionDenied
        petition = get_object_or_404(Petition, pk=petition_id)
        return petition_signatures_csv_response(petition, actor=request.user)

    def printable_view(self, request, petition_id: int):
        if not self.has_export_signatures_permission(request):
            raise PermissionDenied
        petition = get_object_or_404(Petition, pk=petition_id)
        signers = petition_printable_signers(petition)
        supporter_audit_record(
            action=SupporterAuditEntry.Action.EXPORTED_SIGNATURES,
            actor=request.user,
            row_count=len(signers),
            detail=f"Printable list of petition {petition.slug}",
        )
        return TemplateResponse(
            request,
            "admin/campaigns/petition/printable.html",
            {"petition": petition, "signers": signers, "signer_count": len(signers)},
        )

    @admin.action(description="Export signatures as CSV", permissions=["export_signatures"])
    def export_signatures_csv(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(
                request, "Select exactly one petition to export its signatures.", messages.ERROR
            )
            return None
        return petition_signatures_csv_response(queryset.get(), actor=request.user)

    @admin.display(description="Signatures", ordering="confirmed_count")
    def confirmed_signatures(self, petition) -> int:
        return petition.confirmed_count

    @admin.display(description="Unconfirmed", ordering="unconfirmed_count")
    def unconfirmed_signatures(self, petition) -> int:
        return petition.unconfirmed_count

    @admin.display(description="Embed snippet")
    def embed_snippet(self, petition) -> str:
        if petition.pk is None:
            return "Save the petition to get its embed snippet."
        embed_url = settings.SITE_URL + reverse(
            "campaigns:petition_embed", kwargs={"slug": petition.slug}
        )
        snippet = format_html(
            '<iframe src="{}" title="{}" width="100%" height="640" style="border:0" '
            'loading="lazy"></iframe>',
            embed_url,
            petition.title,
        )
        # escape() again, unlike format_html's conditional escaping: the snippet is shown as
        # text to copy, not rendered as an iframe in the admin.
        return format_html(
            '<textarea readonly rows="3" cols="90" aria-label="Embed snippet">{}</textarea>'
            '<div class="help">Paste this on a partner site to embed the sign form.</div>',
            escape(snippet),
        )


class ConfirmedByEmailFilter(admin.SimpleListFilter):
    title = "Confirmed by email"
    parameter_name = "confirmed"

    def lookups(self, request, model_admin):
        return (("yes", "Yes"), ("no", "No"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(confirmed_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(confirmed_at__isnull=True)
        return queryset


@admin.register(Signature)
class SignatureAdmin(admin.ModelAdmin):
    list_display = ("supporter", "petition", "created_at", "confirmed_at", "mailing", "source")
    list_filter = ("petition", ConfirmedByEmailFilter, "source", "mailing")
    search_fields = ("supporter__email", "supporter__first_name", "supporter__last_name")
    list_select_related = ("supporter", "petition", "mailing")
    raw_id_fields = ("supporter", "mailing")
    readonly_fields = ("created_at",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    actions = ["resend_confirmation"]

    @admin.action(description="Resend confirmation email", permissions=["change"])
    def resend_confirmation(self, request, queryset):
        unconfirmed = queryset.filter(confirmed_at__isnull=True).select_related(
            "supporter", "petition"
        )
        queued = 0
        for signature in unconfirmed:
            signature_confirmation_send(signature_id=signature.pk)
            queued += 1
        already_confirmed = queryset.count() - queued
        self.message_user(
            request,
            f"Queued {queued} confirmation email(s); skipped {already_confirmed} "
            "signature(s) already confirmed.",
            messages.SUCCESS if queued else messages.WARNING,
        )
