from django.contrib import admin

from .imports.admin import SupporterImportAdmin
from .models import ConsentRecord, Supporter, SupporterImport, Tag


class ConsentRecordInline(admin.TabularInline):
    model = ConsentRecord
    extra = 0
    can_delete = False
    readonly_fields = ("wording", "source_url", "ip_truncated", "created_at")

    def has_add_permission(self, request, obj=None) -> bool:
        # Consent is proof of what a person agreed to: only the sign flow records it.
        return False


@admin.register(Supporter)
class SupporterAdmin(admin.ModelAdmin):
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
    readonly_fields = ("created_at", "updated_at", "unsubscribed_at")
    filter_horizontal = ("tags",)
    date_hierarchy = "created_at"
    inlines = [ConsentRecordInline]
    show_full_result_count = False  # Counting a million rows on every page is slow.


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


# Imports have pages of their own (supporters/imports/admin.py).
admin.site.register(SupporterImport, SupporterImportAdmin)
