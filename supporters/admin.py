from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import IGNORED_PARAMS
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import path, reverse

from .engagement_admin import EngagementFieldsMixin
from .exports import describe_filters, supporters_csv_response
from .imports.admin import SupporterImportAdmin
from .models import ConsentRecord, Supporter, SupporterAuditEntry, SupporterImport, Tag

# Who may take the supporter list out of Rally as a file.
SUPPORTER_EXPORT_PERMISSION = "supporters.export_supporters"


class ConsentRecordInline(admin.TabularInline):
    model = ConsentRecord
    extra = 0
    can_delete = False
    readonly_fields = ("wording", "source_url", "ip_truncated", "created_at")

    def has_add_permission(self, request, obj=None) -> bool:
        # Consent is proof of what a person agreed to: only the sign flow records it.
        return False


@admin.register(Supporter)
class SupporterAdmin(EngagementFieldsMixin, admin.ModelAdmin):
    list_display = (
        "email",
        "first_name",
        "last_name",
        "country",
        "language",
        "status",
        "created_at",
    )
    list_filter = ("status", "language", "tags", "created_at")
    search_fields = ("email", "first_name", "last_name", "postcode")
    # Suppression is the ESP's word (mailings/feedback/), not an admin's to edit.
    readonly_fields = (
        "created_at", "updated_at", "unsubscribed_at", "suppressed_at", "suppression_reason",
    )  # fmt: skip
    filter_horizontal = ("tags",)
    date_hierarchy = "created_at"
    inlines = [ConsentRecordInline]
    show_full_result_count = False  # Counting a million rows on every page is slow.
    # Adds "Export these N supporters as CSV", with the page's filters, beside "Add supporter".
    change_list_template = "admin/supporters/supporter/change_list.html"

    def get_urls(self):
        opts = self.opts
        return [
            path(
                "export.csv",
                self.admin_site.admin_view(self.export_csv_view),
                name=f"{opts.app_label}_{opts.model_name}_export_csv",
            ),
            *super().get_urls(),
        ]

    def has_export_supporters_permission(self, request) -> bool:
        return request.user.has_perm(SUPPORTER_EXPORT_PERMISSION)

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_export_supporters": self.has_export_supporters_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def export_csv_view(self, request):
        """Download the changelist's rows as CSV: its filters, search and drill-down, all rows.

        The changelist itself builds the queryset from the same query string, so the file
        holds exactly what the campaigner saw, however the filters change in future.
        """
        if not self.has_export_supporters_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            self.message_user(
                request, "Those filters do not make sense together; nothing was exported.",
                messages.ERROR,
            )  # fmt: skip
            return HttpResponseRedirect(reverse("admin:supporters_supporter_changelist"))
        filters = {
            name: values
            for name, values in changelist.filter_params.items()
            if name not in IGNORED_PARAMS
        }
        return supporters_csv_response(
            supporters=changelist.queryset,
            row_count=changelist.result_count,
            filters=describe_filters(filters, search=changelist.query),
            actor=request.user,
        )


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at")
    search_fields = ("name",)


@admin.register(ConsentRecord)
class ConsentRecordAdmin(admin.ModelAdmin):
    list_display = ("supporter", "created_at", "source_url", "ip_truncated")
    search_fields = ("supporter__email",)
    list_select_related = ("supporter",)
    raw_id_fields = ("supporter",)
    readonly_fields = ("supporter", "wording", "source_url", "ip_truncated", "created_at")

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(SupporterAuditEntry)
class SupporterAuditEntryAdmin(admin.ModelAdmin):
    """The audit log, read-only: written by the export, import and erasure services alone."""

    list_display = ("created_at", "actor_name", "action", "row_count", "detail")
    list_filter = ("action", "created_at")
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# Imports have pages of their own (supporters/imports/admin.py).
admin.site.register(SupporterImport, SupporterImportAdmin)
