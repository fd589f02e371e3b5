from django import forms
from django.contrib import admin
from django.db.models import Count, Q

from .models import Campaign, Petition, Signature
from .richtext import sanitize_html


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


@admin.register(Petition)
class PetitionAdmin(admin.ModelAdmin):
    form = PetitionAdminForm
    list_display = (
        "title", "campaign", "language", "is_open", "confirmed_signatures",
        "unconfirmed_signatures", "goal", "created_at",
    )  # fmt: skip
    list_filter = ("is_open", "language", "requires_confirmation", "campaign")
    search_fields = ("title", "slug", "target")
    prepopulated_fields = {"slug": ("title",)}

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

    @admin.display(description="Signatures", ordering="confirmed_count")
    def confirmed_signatures(self, petition) -> int:
        return petition.confirmed_count

    @admin.display(description="Unconfirmed", ordering="unconfirmed_count")
    def unconfirmed_signatures(self, petition) -> int:
        return petition.unconfirmed_count


@admin.register(Signature)
class SignatureAdmin(admin.ModelAdmin):
    list_display = ("supporter", "petition", "created_at", "confirmed_at", "mailing", "source")
    list_filter = ("petition", ("confirmed_at", admin.EmptyFieldListFilter), "mailing", "source")
    search_fields = ("supporter__email", "supporter__first_name", "supporter__last_name")
    list_select_related = ("supporter", "petition", "mailing")
    raw_id_fields = ("supporter", "mailing")
    readonly_fields = ("created_at",)
    date_hierarchy = "created_at"
    show_full_result_count = False
