"""Webhooks in the admin: subscriptions (administrators only) and the deliveries' record.

Subscriptions carry the secret every request is signed with, and decide where supporters'
data is sent: only a superuser sees or changes them. Deliveries are read-only, with each
receiver's answer; retrying one needs webhooks.retry_webhookdelivery.
"""

import json

from django.contrib import admin, messages
from django.utils.html import format_html

from .forms import WebhookSubscriptionForm
from .models import WebhookDelivery, WebhookSubscription
from .services import (
    webhook_delivery_retry,
    webhook_subscription_delete,
    webhook_subscription_save,
)

RETRY_PERMISSION = "webhooks.retry_webhookdelivery"


class AdministratorsOnly:
    """Every page and change to superusers alone."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(AdministratorsOnly, admin.ModelAdmin):
    form = WebhookSubscriptionForm
    list_display = ["url", "event_list", "active", "created_by", "created_at"]
    list_filter = ["active"]
    fields = ["url", "events", "new_secret", "active"]

    @admin.display(description="Events")
    def event_list(self, subscription):
        return ", ".join(subscription.events)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        webhook_subscription_save(subscription=obj)

    def delete_model(self, request, obj):
        webhook_subscription_delete(subscription=obj)

    def delete_queryset(self, request, queryset):
        for subscription in queryset:
            webhook_subscription_delete(subscription=subscription)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "event_type", "event_id", "subscription_url", "status", "attempts", "response_status",
        "last_attempt_at", "next_attempt_at",
    ]  # fmt: skip
    list_filter = ["status", "event__type"]
    list_select_related = ["event", "subscription"]
    search_fields = ["=event__event_id"]
    actions = ["retry"]
    fields = [
        "event_type", "event_id", "subscription_url", "status", "attempts", "response_status",
        "response_body", "created_at", "last_attempt_at", "next_attempt_at", "finished_at",
        "body",
    ]  # fmt: skip
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_retry_permission(self, request):
        return request.user.has_perm(RETRY_PERMISSION)

    @admin.display(description="Event", ordering="event__type")
    def event_type(self, delivery):
        return delivery.event.type

    @admin.display(description="Event id")
    def event_id(self, delivery):
        return str(delivery.event.event_id)

    @admin.display(description="Subscription")
    def subscription_url(self, delivery):
        return delivery.subscription.url

    @admin.display(description="Body sent")
    def body(self, delivery):
        return format_html(
            "<pre>{}</pre>", json.dumps(delivery.event.payload, indent=2, ensure_ascii=False)
        )

    @admin.action(description="Retry the selected deliveries now", permissions=["retry"])
    def retry(self, request, queryset):
        count = webhook_delivery_retry(delivery_ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"{count} deliveries queued again.", messages.SUCCESS)
