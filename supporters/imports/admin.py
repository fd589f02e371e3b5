"""The import pages of the admin: upload, columns (with a preview), progress, rejected rows.

Everything here needs the supporters.import_supporters permission: an import changes the list
and its report holds the rows as uploaded. Registered from supporters/admin.py.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from ..models import SupporterAuditEntry
from .forms import ImportMappingForm, ImportUploadForm
from .mapping import mapping_guess
from .models import SupporterImport
from .reading import ImportFileError
from .selectors import supporter_import_progress, supporter_import_report_lines
from .services import (
    binary_stream,
    file_header_read,
    supporter_import_create,
    supporter_import_start,
)

PERMISSION = "supporters.import_supporters"
PREVIEW_ROWS = 10


class SupporterImportAdmin(admin.ModelAdmin):
    list_display = ("original_name", "status", "rows", "created", "merged", "rejected",
                    "started_by_name", "created_at")  # fmt: skip
    list_filter = ("status",)
    ordering = ("-created_at",)

    def has_module_permission(self, request) -> bool:
        return request.user.has_perm(PERMISSION)

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(PERMISSION)

    def has_add_permission(self, request) -> bool:
        return request.user.has_perm(PERMISSION)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # an import is a record of what happened

    def has_delete_permission(self, request, obj=None) -> bool:
        # Deleting an import deletes its report of rejected rows (and their raw cells).
        return request.user.has_perm(PERMISSION)

    def delete_model(self, request, obj) -> None:
        obj.file.delete(save=False)  # a draft's upload, never imported
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        for supporter_import in queryset.exclude(file=""):
            supporter_import.file.delete(save=False)
        super().delete_queryset(request, queryset)

    def get_urls(self):
        info = f"{self.opts.app_label}_{self.opts.model_name}"

        def page(route, view, name):
            return path(route, self.admin_site.admin_view(view), name=f"{info}_{name}")

        return [
            page("<int:import_id>/columns/", self.columns_view, "columns"),
            page("<int:import_id>/progress.json", self.progress_json_view, "progress_json"),
            page("<int:import_id>/rejected.csv", self.report_view, "report"),
            *super().get_urls(),
        ]

    def _url(self, name: str, import_id: int) -> str:
        return reverse(f"admin:supporters_supporterimport_{name}", args=[import_id])

    def _context(self, request, title: str, **context) -> dict:
        return {**self.admin_site.each_context(request), "opts": self.opts, "title": title,
                **context}  # fmt: skip

    def _get(self, request, import_id) -> SupporterImport:
        if not request.user.has_perm(PERMISSION):
            raise PermissionDenied
        # The change page's id comes from the admin's catch-all pattern: any text at all.
        if not str(import_id).isdigit():
            raise Http404("No such import.")
        return get_object_or_404(SupporterImport, pk=import_id)

    def add_view(self, request, form_url="", extra_context=None):
        """Take the file, the tags and the consent; then ask about the columns."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ImportUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                # A file that cannot be read is refused before it is stored.
                file_header_read(binary_stream(upload), encoding=form.cleaned_data["encoding"])
                upload.seek(0)
                supporter_import = supporter_import_create(
                    original_name=upload.name,
                    tag_names=form.tag_names(),
                    consent_source=form.cleaned_data["consent_source"],
                    consent_wording=form.cleaned_data["consent_wording"],
                    encoding=form.cleaned_data["encoding"],
                    upload=upload,
                    actor=request.user,
                )
            except ImportFileError as error:
                form.add_error(None, str(error))
            else:
                return HttpResponseRedirect(self._url("columns", supporter_import.pk))
        context = self._context(request, "Import supporters", form=form)
        return TemplateResponse(request, "supporters/imports/upload.html", context)

    def columns_view(self, request, import_id: int):
        """Show the first rows and the guessed field of each column; start the import."""
        supporter_import = self._get(request, import_id)
        if supporter_import.status != SupporterImport.Status.DRAFT:
            return HttpResponseRedirect(self._url("change", import_id))
        try:
            with supporter_import.file.open("rb") as stored:
                headers, preview, file_format = file_header_read(
                    binary_stream(stored),
                    encoding=supporter_import.encoding,
                    preview_rows=PREVIEW_ROWS,
                )
        except (ImportFileError, OSError) as error:
            messages.error(request, f"This file cannot be imported: {error}")
            return HttpResponseRedirect(reverse("admin:supporters_supporterimport_add"))
        form = ImportMappingForm(
            request.POST or None, headers=headers, mapping=mapping_guess(headers)
        )
        if request.method == "POST" and form.is_valid():
            try:
                supporter_import_start(supporter_import_id=import_id, mapping=form.mapping())
            except ImportFileError as error:
                form.add_error(None, str(error))
            else:
                return HttpResponseRedirect(self._url("change", import_id))
        context = self._context(
            request,
            f"Columns of {supporter_import.original_name}",
            supporter_import=supporter_import,
            form=form,
            preview=[[*row, *[""] * (len(headers) - len(row))] for row in preview],
            file_format=file_format,
        )
        return TemplateResponse(request, "supporters/imports/columns.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """Show the import's progress (polled as JSON) and, once done, its counts and report."""
        supporter_import = self._get(request, object_id)
        if supporter_import.status == SupporterImport.Status.DRAFT:
            return HttpResponseRedirect(self._url("columns", supporter_import.pk))
        context = self._context(
            request,
            f"Import of {supporter_import.original_name}",
            supporter_import=supporter_import,
            progress=supporter_import_progress(supporter_import),
            progress_url=self._url("progress_json", supporter_import.pk),
            report_url=self._url("report", supporter_import.pk),
        )
        return TemplateResponse(request, "supporters/imports/progress.html", context)

    def progress_json_view(self, request, import_id: int):
        return JsonResponse(supporter_import_progress(self._get(request, import_id)))

    def report_view(self, request, import_id: int):
        """Stream the rejected rows as CSV; a download of personal data, so it is audited."""
        supporter_import = self._get(request, import_id)
        SupporterAuditEntry.objects.create(
            actor=request.user,
            actor_name=request.user.get_username(),
            action=SupporterAuditEntry.Action.EXPORTED_SUPPORTERS,
            row_count=supporter_import.rejected,
            detail=f"Rejected rows of import {supporter_import.pk}",
        )
        response = StreamingHttpResponse(
            supporter_import_report_lines(supporter_import), content_type="text/csv"
        )
        filename = f"import-{supporter_import.pk}-rejected.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
