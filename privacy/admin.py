"""The supporter admin with the GDPR buttons: download one person's data, and erase them.

Composed here, above every other app, by subclassing SupporterAdmin and registering the
subclass in its place: supporters/admin.py stays in its layer (it may not import privacy),
the changelist, filters and CSV export stay SupporterAdmin's own, and the GDPR URLs live where
admin URLs for a supporter live (/admin/supporters/supporter/<id>/erase/), wrapped by the
admin site like any other. `privacy` comes after `supporters` in INSTALLED_APPS, so this runs
after supporters/admin.py has registered the original.
"""

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from supporters.admin import SupporterAdmin
from supporters.models import Supporter

from .selectors import supporter_erasure_plan
from .services import supporter_data_export, supporter_erase

PERSON_EXPORT_PERMISSION = "supporters.export_person"
ERASE_PERMISSION = "supporters.erase_supporter"


class PrivacySupporterAdmin(SupporterAdmin):
    # Adds "Download this supporter's data (JSON)" and "Erase this supporter…" to the tools.
    change_form_template = "admin/privacy/supporter_change_form.html"

    def get_urls(self):
        opts = self.opts
        return [
            path(
                "<int:supporter_id>/data.json",
                self.admin_site.admin_view(self.person_data_view),
                name=f"{opts.app_label}_{opts.model_name}_person_data",
            ),
            path(
                "<int:supporter_id>/erase/",
                self.admin_site.admin_view(self.erase_view),
                name=f"{opts.app_label}_{opts.model_name}_erase",
            ),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, *args, **kwargs):
        context["can_export_person"] = request.user.has_perm(PERSON_EXPORT_PERMISSION)
        context["can_erase_supporter"] = request.user.has_perm(ERASE_PERMISSION)
        return super().render_change_form(request, context, *args, **kwargs)

    def person_data_view(self, request, supporter_id: int):
        """Download everything held about the supporter, as a JSON file (audited)."""
        if not request.user.has_perm(PERSON_EXPORT_PERMISSION):
            raise PermissionDenied
        supporter = get_object_or_404(Supporter, pk=supporter_id)
        data = supporter_data_export(supporter_id=supporter.pk, actor=request.user)
        response = HttpResponse(
            json.dumps(data, indent=2, ensure_ascii=False),
            content_type="application/json; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="supporter-{supporter.pk}.json"'
        return response

    def erase_view(self, request, supporter_id: int):
        """Show what erasure removes (GET changes nothing); erase on the confirming POST."""
        if not request.user.has_perm(ERASE_PERMISSION):
            raise PermissionDenied
        supporter = get_object_or_404(Supporter, pk=supporter_id)
        change_url = reverse("admin:supporters_supporter_change", args=[supporter.pk])
        if request.method == "POST":
            result = supporter_erase(supporter_id=supporter.pk, actor=request.user)
            if result.already_erased:
                self.message_user(request, f"Supporter #{supporter.pk} was erased already.")
            else:
                self.message_user(
                    request,
                    f"Erased supporter #{supporter.pk}: personal data removed from "
                    f"{result.table_count} tables; the address is on the suppression list.",
                    messages.SUCCESS,
                )
            return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Erase this supporter?",
            "supporter": supporter,
            "already_erased": supporter.status == Supporter.Status.ERASED,
            "plan": supporter_erasure_plan(supporter=supporter),
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/privacy/supporter_erase.html", context)


admin.site.unregister(Supporter)
admin.site.register(Supporter, PrivacySupporterAdmin)
