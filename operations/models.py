"""No tables: one model without a table, so that the operator's page has a permission and an
entry in the admin's index like any other page."""

from django.db import models


class WorkersAndQueues(models.Model):
    """The page of workers, queues and sends in progress (operations/admin.py); never stored.

    Seeing it takes `operations.view_workersandqueues` (or a superuser): it names the machines
    that run Rally, which a campaigner has no need to know.
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("view_workersandqueues", "Can see workers, queues and sends in progress")]
        verbose_name = "workers and queues"
        verbose_name_plural = "workers and queues"

    def __str__(self) -> str:
        return "Workers and queues"
