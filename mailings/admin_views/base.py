"""The base of a mailing's class-based admin pages: who may see it, and how it renders."""

from django.contrib.admin.templatetags.admin_urls import admin_urlname
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views import View

from mailings.models import Mailing


class MailingAdminView(View):
    """A page about one mailing, under MailingAdmin, that the admin's permissions gate."""

    model_admin = None  # the MailingAdmin, given to as_view()

    def viewable_mailing(self, request, mailing_id: int) -> Mailing:
        """Return the mailing if the user may view mailings: 403 if not, 404 if it is missing."""
        if not self.model_admin.has_view_permission(request):
            raise PermissionDenied
        return get_object_or_404(Mailing, pk=mailing_id)

    def progress_url(self, mailing: Mailing) -> str:
        return reverse(
            admin_urlname(self.model_admin.opts, "progress"),
            args=[mailing.pk],
            current_app=self.model_admin.admin_site.name,
        )

    def render(self, request, template: str, mailing: Mailing, title: str, **context):
        request.current_app = self.model_admin.admin_site.name
        return TemplateResponse(
            request,
            template,
            {
                **self.model_admin.admin_site.each_context(request),
                "opts": self.model_admin.opts,
                "title": title,
                "mailing": mailing,
                **context,
            },
        )
