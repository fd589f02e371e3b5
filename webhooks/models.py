"""Outbound webhooks: who is told (subscriptions), what happened (events), and each telling.

An event's body is made once, when the change commits, and kept: every subscription is sent
the same bytes, and a retry re-sends them. Deliveries are the work queue itself, in the
database, so a Redis that forgets its queued tasks loses none of them (the sweep finds them
again by `next_attempt_at`).
"""

import uuid

from django.conf import settings
from django.db import models

from .destinations import validate_webhook_url
from .event_types import EVENT_TYPE_CHOICES, validate_event_types


class WebhookSubscription(models.Model):
    url = models.URLField(max_length=500, validators=[validate_webhook_url])
    # The event types this subscription hears (event_types.EVENT_TYPES).
    events = models.JSONField(default=list, validators=[validate_event_types])
    # Shared with the receiver, which checks each body's Rally-Signature with it; never shown
    # again after it is set (admin.py).
    secret = models.CharField(max_length=200)
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.url


class WebhookEvent(models.Model):
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    type = models.CharField(max_length=40, choices=EVENT_TYPE_CHOICES)
    created_at = models.DateTimeField()
    # The whole JSON body every subscription is sent: {"id", "type", "created", "data"}.
    payload = models.JSONField()
    # Whose personal data the payload may hold, so that erasing them can scrub it
    # (services.webhook_events_scrub_person); None for an event about no one (mailing.sent).
    supporter_id = models.BigIntegerField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        # The receiver refused it for good (a 4xx other than 429): a retry cannot help.
        FAILED = "failed", "Failed"
        # Still failing when the retry window (RALLY_WEBHOOK_RETRY_HOURS) closed.
        GIVEN_UP = "given_up", "Given up"

    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # When the next attempt is due; None once the delivery is settled. The sweep re-queues
    # pending deliveries whose time has come.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Taken by a worker until then: a second task for the same delivery finds it taken and
    # goes away, and a worker that died mid-attempt leaves it for the sweep after it passes.
    locked_until = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    # The start of the receiver's answer, or what went wrong when there was none.
    response_body = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["event", "subscription"], name="webhook_delivery_once_per_subscription"
            )
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_delivery_due",
                condition=models.Q(status="pending"),
            )
        ]
        permissions = [("retry_webhookdelivery", "Can retry a webhook delivery")]

    def __str__(self) -> str:
        return f"{self.event} → {self.subscription}"
