"""The operator's page in the admin: queue lengths, workers alive, each send's last batch."""

import logging

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from redis.exceptions import RedisError

from operations.models import WorkersAndQueues
from operations.selectors import broker_state, sends_in_progress, workers

logger = logging.getLogger(__name__)

VIEW_PERMISSION = "operations.view_workersandqueues"


@admin.register(WorkersAndQueues)
class WorkersAndQueuesAdmin(admin.ModelAdmin):
    """One page and nothing else: WorkersAndQueues has no table to list, add to or change."""

    def has_module_permission(self, request) -> bool:
        return request.user.has_perm(VIEW_PERMISSION)

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(VIEW_PERMISSION)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        # Only the page: the admin's change, history and delete URLs would read a table that
        # does not exist.
        opts = self.opts
        return [
            path(
                "",
                self.admin_site.admin_view(self.changelist_view),
                name=f"{opts.app_label}_{opts.model_name}_changelist",
            ),
        ]

    def changelist_view(self, request, extra_context=None):
        """Show the broker's queues, the workers' heartbeats and every send in progress."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            broker, alive = broker_state(), workers()
        except RedisError:
            logger.warning("Workers and queues: Redis is unreachable")
            broker, alive = None, None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Workers and queues",
            "broker": broker,
            "workers": alive,
            "sends": sends_in_progress(),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/operations/workers_and_queues.html", context)
