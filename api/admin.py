from django.contrib import admin, messages
from django.template.response import TemplateResponse

from api.hal import site_base_url
from api.models import ApiAuditEntry, ApiToken
from api.services.tokens import api_token_create, api_token_revoke


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are made here (add permission) and revoked (a permission of its own), never
    edited or deleted: a deleted token would take the audit trail's link with it."""

    list_display = (
        "name",
        "scope",
        "prefix",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("scope", "revoked_at")
    search_fields = ("name", "prefix")
    fields = ("name", "scope")
    readonly_fields = ("prefix", "created_by", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke_tokens"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "scope")
        return ("name", "scope", *self.readonly_fields)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("name", "scope", *self.readonly_fields)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm("api.revoke_apitoken")

    def save_model(self, request, obj, form, change):
        # Made by the service, which draws the secret; the form's instance takes its place.
        issued = api_token_create(
            name=form.cleaned_data["name"],
            scope=form.cleaned_data["scope"],
            created_by=request.user,
        )
        obj.__dict__.update(issued.token.__dict__)
        request.api_token_secret = issued.secret

    def response_add(self, request, obj, post_url_continue=None):
        return TemplateResponse(
            request,
            "admin/api/apitoken/created.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "API token made",
                "token": obj,
                "secret": request.api_token_secret,
                "api_url": f"{site_base_url()}/",
            },
        )

    @admin.action(description="Revoke the selected API tokens", permissions=["revoke"])
    def revoke_tokens(self, request, queryset):
        revoked = sum(api_token_revoke(token_id=token.pk) for token in queryset)
        self.message_user(
            request,
            f"{revoked} token(s) revoked: every process refuses them within a few seconds.",
            messages.SUCCESS,
        )


@admin.register(ApiAuditEntry)
class ApiAuditEntryAdmin(admin.ModelAdmin):
    """The API's audit log, read-only: written by the API's view wrapper alone (api/hal.py)."""

    list_display = ("created_at", "token_name", "method", "path", "status", "written")
    list_filter = ("method", "status", "created_at")
    search_fields = ("token_name", "path", "written")
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
