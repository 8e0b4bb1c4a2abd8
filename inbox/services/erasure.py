"""Forgetting a contact, and message content past its retention period.

Erasing a contact empties what their messages said (text, Meta's message objects with their media ids
and links, Meta's errors, names) and keeps what was counted: the rows, their ids, directions, statuses
and times. The raw webhook payloads and the events out that mention the contact are deleted whole
(their deliveries, pending or done, with them): they hold nothing else worth keeping without the
content. Idempotency records keep their answer without the content, so a retry still never sends twice.

Retention does the first part for every message older than MESSAGE_CONTENT_RETENTION_DAYS (or the
org's own period); purge_expired and the scheduler run it."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from inbox.models import Contact, Conversation, IdempotencyRecord, Message, Org, PhoneNumber, WebhookEvent
from outbox.models import Event

ERASED_CONTENT: dict[str, object] = {
    "text": "",
    "payload": {},
    "error": None,
    "contact_name": "",
    "edits": None,
}  # edits: earlier texts
RETENTION_BATCH = 1000


@dataclass(frozen=True)
class Erased:
    messages: int
    webhook_payloads: int
    events: int


def _erase_messages(messages: QuerySet[Message], now: datetime) -> int:
    """Empty the content of `messages` (a queryset) not erased yet; how many were."""
    return messages.filter(content_erased_at__isnull=True).update(**ERASED_CONTENT, content_erased_at=now)


def contact_erase(*, phone_number: PhoneNumber, contact: str) -> Erased:
    """Erase what `contact` (wa_id or business-scoped user id) said and was told on `phone_number`."""
    now = timezone.now()
    quoted = f'"{contact}"'  # the id as JSON has it: `"6281..."` never matches inside a longer id
    with transaction.atomic():
        conversation = Message.objects.filter(phone_number=phone_number).filter(
            Q(contact_wa_id=contact) | Q(contact_user_id=contact)
        )
        messages = _erase_messages(conversation, now)
        Conversation.objects.filter(phone_number=phone_number).filter(
            Q(contact_wa_id=contact) | Q(contact_user_id=contact)
        ).update(last_message_text="", contact_name="")
        Contact.objects.filter(phone_number=phone_number, contact_wa_id=contact).update(saved_name="")
        # Raw bodies of Meta's webhooks: found by their text, which names the number and the contact.
        payloads = (
            WebhookEvent.objects.filter(body__contains=quoted)
            .filter(body__contains=f'"{phone_number.phone_number_id}"')
            .delete()[1]
            .get(WebhookEvent._meta.label, 0)
        )
        events = Event.objects.filter(org_id=phone_number.org_id, body__contains=quoted).delete()[1]
        for record in IdempotencyRecord.objects.filter(
            org_id=phone_number.org_id, response_body__data__contact=contact
        ):
            assert record.response_body is not None  # it names the contact
            record.response_body["data"].update(text="", content={}, error=None, contact_name="")
            record.save(update_fields=["response_body"])
    return Erased(messages=messages, webhook_payloads=payloads, events=events.get(Event._meta.label, 0))


def retention_days_of(org: Org) -> int | None:
    """The org's period, else MESSAGE_CONTENT_RETENTION_DAYS; None: content is kept."""
    return org.message_content_retention_days or settings.MESSAGE_CONTENT_RETENTION_DAYS


def message_content_expire(now: datetime | None = None) -> int:
    """Empty the content of every message older than its org's retention period; how many. Short
    batches, each its own transaction, so inbound traffic never waits long on them. The scheduler (or
    purge_expired) calls it; running it again changes nothing."""
    now = now or timezone.now()
    erased = 0
    for org in Org.objects.all():
        days = retention_days_of(org)
        if not days:
            continue
        expired = Message.objects.filter(
            org=org, timestamp__lt=now - timedelta(days=days), content_erased_at__isnull=True
        )
        while True:
            with transaction.atomic():
                batch = list(expired.order_by("pk").values_list("pk", flat=True)[:RETENTION_BATCH])
                erased += _erase_messages(Message.objects.filter(pk__in=batch), now)
            if len(batch) < RETENTION_BATCH:
                break
    return erased
