"""Events out: an org's webhook subscriptions, the events Kirim records for them, and one delivery
row per (event, subscription), the source of truth for attempts, retries, replay and dead letters."""

import base64
import secrets
from datetime import datetime, timedelta

from django.core.exceptions import EmptyResultSet
from django.db import connection, models
from django.db.models import Q
from django.utils import timezone

from core.encryption import EncryptedTextField
from core.ids import PublicIdField
from orgs.models import Org

SECRET_PREFIX = "whsec_"
OLD_SECRET_SIGNS_FOR = timedelta(hours=24)


class EventType(models.TextChoices):
    MESSAGE_RECEIVED = "message.received"
    MESSAGE_STATUS = "message.status"
    MESSAGE_READ = "message.read"
    CONVERSATION_ASSIGNED = "conversation.assigned"
    CONVERSATION_STATE_CHANGED = "conversation.state_changed"
    CONVERSATION_NOTE_ADDED = "conversation.note_added"
    # Meta's other webhook fields, each passed on as Meta sent it (inbox.services.ingest.FIELD_EVENTS).
    MESSAGE_ECHO = "message.echo"  # smb_message_echoes: sent from the WhatsApp Business app
    MESSAGE_HISTORY = "message.history"  # history: the app's past chats
    CONTACT_SYNC = "contact.sync"  # smb_app_state_sync: the app's contacts
    TEMPLATE_STATUS = "template.status"  # message_template_status_update
    TEMPLATE_CATEGORY = "template.category"  # template_category_update
    TEMPLATE_QUALITY = "template.quality"  # message_template_quality_update
    NUMBER_QUALITY = "number.quality"  # phone_number_quality_update
    ACCOUNT_UPDATE = "account.update"  # account_update


class EventSource(models.TextChoices):
    META = "meta"  # the body is Meta's own webhook JSON, cut down to the org's items
    KIRIM = "kirim"  # the body is Kirim's envelope {id, type, created_at, data}


SOURCE_OF: dict[str, EventSource] = {
    **{t: EventSource.META for t in EventType},
    EventType.MESSAGE_READ: EventSource.KIRIM,
    EventType.CONVERSATION_ASSIGNED: EventSource.KIRIM,
    EventType.CONVERSATION_STATE_CHANGED: EventSource.KIRIM,
    EventType.CONVERSATION_NOTE_ADDED: EventSource.KIRIM,
}


class Receiver(models.TextChoices):
    """What the subscriber's URL can parse."""

    META = "meta", "A handler written for Meta's webhooks: Meta's JSON only"
    KIRIM = "kirim", "Reads Kirim's envelope too"


# Meta's fields beyond `messages`: a subscription gets them only when it lists them, so no existing
# handler meets a field it never saw; one that lists no event types gets every other type it parses.
ASKED_FOR_BY_NAME = (
    EventType.MESSAGE_ECHO,
    EventType.MESSAGE_HISTORY,
    EventType.CONTACT_SYNC,
    EventType.TEMPLATE_STATUS,
    EventType.TEMPLATE_CATEGORY,
    EventType.TEMPLATE_QUALITY,
    EventType.NUMBER_QUALITY,
    EventType.ACCOUNT_UPDATE,
)

# The event types each kind of receiver can parse.
RECEIVES: dict[str, list[str]] = {
    Receiver.META: sorted(t.value for t in EventType if SOURCE_OF[t] == EventSource.META),
    Receiver.KIRIM: sorted(EventType.values),
}


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


class SubscriptionQuerySet(models.QuerySet["WebhookSubscription"]):
    """Row locks on subscriptions. A transaction that writes a subscription's deliveries (or adds
    some) locks the subscription first, in primary-key order when it takes several, and only then
    their rows: one order for all, so none waits on another in a circle (a delete's cascade once took
    the deliveries first and the workers the subscription first, and they deadlocked; a claim, which
    locks its one delivery alone, waits on nothing while holding it). Three
    strengths, each conflicting only where it must (SQLite, which locks the whole database for a
    transaction, needs none of them):
    - `lock_to_add()`: ingestion and replays adding deliveries, FOR KEY SHARE: they hold off a
      delete, or wait for it and then find the row gone, and never wait on each other or a worker;
    - `lock_to_work()`: settles and a delete's batches, FOR NO KEY UPDATE: one at a time;
    - `lock_to_delete()`: removing the row itself, FOR UPDATE: after every transaction above."""

    def lock_to_add(self) -> "list[WebhookSubscription]":
        """The rows, locked FOR KEY SHARE (which Django's ORM cannot say); rows deleted meanwhile are left out."""
        rows = self.order_by("pk")
        if connection.vendor != "postgresql":
            return list(rows)
        try:
            sql, params = rows.query.sql_with_params()
        except EmptyResultSet:  # `pk__in` an empty list: no query to make
            return []
        return list(self.raw(f"{sql} FOR KEY SHARE", params))

    def lock_to_work(self) -> list[int]:
        """The rows' primary keys, locked FOR NO KEY UPDATE."""
        return list(self.select_for_update(no_key=True).order_by("pk").values_list("pk", flat=True))

    def lock_to_delete(self) -> list[int]:
        """The rows' primary keys, locked FOR UPDATE."""
        return list(self.select_for_update().order_by("pk").values_list("pk", flat=True))


class WebhookSubscription(models.Model):
    """Where an org wants its events. The secrets sign deliveries, so they are kept, encrypted (like
    Meta tokens); they are shown once, when made, and never in a response or page after.
    Failures count per event type, so a type the receiver refuses (Kirim's envelope at a handler
    written for Meta's webhooks) is stopped alone and never stops the types it accepts."""

    secret_fields = ("secret", "previous_secret")  # never a lookup either (orgs/scope.py)

    external_id = PublicIdField("wbs")
    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="webhook_subscriptions")
    url = models.URLField(max_length=2000)
    receiver = models.CharField(max_length=8, choices=Receiver.choices, default=Receiver.META)
    events = models.JSONField(help_text="Event types this subscription receives")
    description = models.CharField(max_length=500, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True, help_text="Why Kirim disabled it, if it did")
    # Encrypted at rest (core/encryption.py).
    secret = EncryptedTextField(default=new_secret, editable=False)
    previous_secret = EncryptedTextField(blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    failure_streaks = models.JSONField(default=dict, editable=False, help_text="Failed deliveries in a row, by type")
    disabled_events = models.JSONField(default=dict, editable=False, help_text="Event types Kirim stopped, and why")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SubscriptionQuerySet.as_manager()

    class Meta:
        verbose_name = "webhook subscription"
        ordering = ("-created_at", "-pk")
        indexes = (models.Index(fields=["org", "enabled"], name="subscription_org_enabled"),)

    def __str__(self) -> str:
        return f"{self.external_id} {self.url}"

    def signing_secrets(self, now: datetime | None = None) -> list[str]:
        """The secrets that sign a delivery now: the current one, and the one it replaced for 24 hours."""
        now = now or timezone.now()
        if self.previous_secret and self.previous_secret_expires_at and self.previous_secret_expires_at > now:
            return [self.secret, self.previous_secret]
        return [self.secret]

    def why_stopped(self, event_type: str) -> str:
        """Why Kirim sends no `event_type` event here now, or "" when it sends them."""
        if not self.enabled:
            return "subscription disabled"
        if event_type in self.disabled_events:
            return f"{event_type} disabled for this subscription"
        return ""


class Event(models.Model):
    """Something that happened to an org, recorded in the transaction of the change itself."""

    external_id = PublicIdField("evt")
    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+")
    type = models.CharField(max_length=32, choices=EventType.choices)
    body = models.TextField(help_text="The exact JSON every delivery of this event sends")
    created_at = models.DateTimeField(default=timezone.now)
    # W3C's traceparent of the span that recorded it, when traces are on: its deliveries continue that trace.
    trace_parent = models.CharField(max_length=55, blank=True, default="", db_default="")

    def __str__(self) -> str:
        return f"{self.external_id} {self.type}"

    @property
    def source(self) -> EventSource:
        return SOURCE_OF[self.type]


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"  # waiting for its next attempt (or in one: see leased_until)
    DELIVERED = "delivered"
    FAILED = "failed"  # refused for good (a 4xx, a disabled subscription)
    DEAD = "dead"  # every attempt of the schedule failed: a dead letter


class Delivery(models.Model):
    """One event to one subscription. A pending delivery waits here until it is given a task (its
    `task_id`, at most one at a time), which claims it with a lease: a worker that dies mid-attempt
    leaves a lease that runs out, and the sweeper frees the delivery for another task."""

    external_id = PublicIdField("wbd")
    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+")
    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    event_type = models.CharField(max_length=32, choices=EventType.choices)
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    leased_until = models.DateTimeField(null=True, blank=True)
    task_id = models.CharField(max_length=64, blank=True, help_text="The task queued or running for it, if any")
    queued_at = models.DateTimeField(null=True, blank=True, help_text="When that task was queued")
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ("-created_at", "-pk")
        indexes = (
            # Deliveries waiting for a task, by org and subscription, oldest due first: what gets the
            # next free slot. The queued ones are few (the caps), counted per org for those slots.
            models.Index(
                fields=["org", "subscription", "next_attempt_at"],
                condition=Q(status="pending", task_id=""),
                name="delivery_waiting",
            ),
            models.Index(fields=["org"], condition=Q(status="pending") & ~Q(task_id=""), name="delivery_queued"),
            models.Index(fields=["org", "-created_at", "-external_id"], name="delivery_org_recent"),
            models.Index(fields=["subscription", "-created_at"], name="delivery_subscription_recent"),
            models.Index(fields=["status", "finished_at"], name="delivery_finished"),
        )

    def __str__(self) -> str:
        return f"{self.external_id} {self.event_type} {self.status}"


class DeliveryAttempt(models.Model):
    """One try: written when it starts, completed when the answer (or the error) is known. An attempt
    left without an outcome belongs to a worker that stopped mid-delivery."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ("delivery", "number")
        constraints = (models.UniqueConstraint(fields=("delivery", "number"), name="attempt_unique_number"),)


class SweeperClock(models.Model):
    """One row: the token of the live sweep chain and when it is next due. A sweep runs only when it
    holds the current token, so at most one chain lives; an overdue clock means the chain died."""

    token = models.CharField(max_length=32, blank=True)
    due_at = models.DateTimeField()


class WorkerHeartbeat(models.Model):
    """A task worker's sign of life, written every WORKER_HEARTBEAT_INTERVAL seconds by the worker
    process (outbox/heartbeat.py), so that readiness and the metrics see every host's workers, and a
    worker that died stops beating. A worker that stops in good order removes its row."""

    name = models.CharField(max_length=300, unique=True, help_text="host:pid")
    kind = models.CharField(max_length=8, help_text="The task backend it runs: db or rq")
    started_at = models.DateTimeField(default=timezone.now)
    beat_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}) {self.beat_at:%H:%M:%S}"
