"""Meta's webhooks as received: each kept raw and signed, and what applying it did."""

from datetime import timedelta
from typing import Self

from django.db import models
from django.db.models import Q
from django.utils import timezone

# An event not processed within this long after it came is taken as failed (its worker died).
WEBHOOK_IN_FLIGHT = timedelta(minutes=5)


class WebhookEventQuerySet(models.QuerySet):
    def failed(self, now=None):
        """Events with an item (or all) not applied, and events whose processing never finished: the
        ones `reprocess_webhooks` and the admin retry. A fresh unprocessed event may still be in flight."""
        in_flight_since = (now or timezone.now()) - WEBHOOK_IN_FLIGHT
        return self.filter(~Q(error="") | Q(processed_at__isnull=True, received_at__lt=in_flight_since))

    def applied(self) -> Self:
        """Events applied whole."""
        return self.filter(error="", processed_at__isnull=False)


class WebhookEvent(models.Model):
    """Every signed webhook Meta delivered, kept raw (in the transaction that applies it), so nothing
    we acknowledge is lost even when applying some of it fails. `error` and `failed_items` say what
    was not applied, and why; `processed_at` is empty when a bug stopped the whole payload."""

    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    body = models.TextField()
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    failed_items = models.JSONField(
        default=list, blank=True, help_text="[{item, reason}] for each message or status that could not be stored"
    )
    attempts = models.PositiveSmallIntegerField(default=1, help_text="Times it was applied, reprocessing included")

    objects = WebhookEventQuerySet.as_manager()

    class Meta:
        indexes = (models.Index(fields=["received_at"], condition=~Q(error=""), name="webhook_event_failed"),)

    def __str__(self):
        return f"webhook {self.pk} at {self.received_at:%Y-%m-%d %H:%M:%S}"

    @property
    def failure(self):
        """Why it was not applied whole, for people: "" when it was."""
        if self.error:
            return self.error
        return "" if self.processed_at else "not processed (its worker stopped)"
