"""The WhatsApp Business app on the same number (coexistence), and the changes Meta reports to messages
already stored: what staff send from the phone (echoes) and the app's past chats (history) stored as
messages of their conversations; edits applied, keeping the earlier text; a deletion taking the content
out of everywhere Kirim keeps it. Called by inbox.services while it applies a webhook, in its transaction.

An echo is outbound and `sent_from_app`: it never opens or extends the customer service window (only
inbound messages do: inbox.replies.reply_window) and is never read-receipted (only inbound ones are)."""

import json
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from core.db.bulk import insert_new
from inbox.models import Conversation, Direction, Message, WebhookEvent
from inbox.services.inbound_rows import ConversationIdentity, Numbers, _conversation_keys, conversations_touch
from meta import payloads as events
from outbox import record as outbox

logger = logging.getLogger("kirim.inbox")

DELETED_PREVIEW = "This message was deleted"
# A kept webhook that brought a message came at the latest this long before the row was written, and
# every one that changed it after: the deletion looks for the message's content only in those.
RECEIVED_BEFORE_STORED = timedelta(minutes=5)


def past_store(items: Sequence[events.PastMessage], numbers: Numbers) -> list[Message]:
    """Insert echoes and history messages into their conversations; a wamid stored before (Meta
    delivers at least once, history chunks overlap what came live) is left alone. The rows inserted."""
    ours = [item for item in items if item.phone_number_id in numbers]
    if len(ours) < len(items):
        logger.warning("%d echo/history message(s) for unknown numbers kept raw only", len(items) - len(ours))
    conversation_of = _conversation_keys(ours, numbers)
    rows = []
    identities: dict[str, ConversationIdentity] = {}
    for item in ours:
        number = numbers[item.phone_number_id]
        row = Message(
            org_id=number.org_id,
            phone_number_id=number.pk,
            wamid=item.wamid,
            direction=item.direction,
            status=item.status,
            contact_wa_id=conversation_of(item, number),
            contact_user_id=item.contact_user_id,
            type=item.type,
            text=item.text,
            payload=item.payload,
            timestamp=item.timestamp,
            sent_from_app=item.direction == Direction.OUTBOUND,
        )
        identities.setdefault(item.wamid, ConversationIdentity(item.contact_user_id, ""))
        rows.append(row)
    inserted = insert_new(rows, unique_field="wamid")
    conversations_touch(inserted, identities=identities)
    return inserted


def changes_apply(changes: Sequence[events.Change], numbers: Numbers, failed: list[events.Failure]) -> list[Message]:
    """Apply edits and deletions to the messages they name on their numbers, in the order Meta sent
    them. A change whose message Kirim does not have fails alone (kept for `reprocess_webhooks`: its
    message may come later). Returns the messages changed."""
    changed = []
    for change in changes:
        number = numbers.get(change.phone_number_id)
        message = (
            Message.objects.filter(phone_number_id=number.pk, wamid=change.original_wamid).first() if number else None
        )
        if message is None:
            failed.append({"item": change.label, "reason": "no message with this id on this number"})
            continue
        if message.deleted_at is not None:
            continue  # deleted stays deleted, whatever comes after
        if change.kind == "edit":
            _edit(message, change)
        else:
            message_delete(message, at=change.timestamp)
        changed.append(message)
    return changed


def _edit(message: Message, change: events.Change) -> None:
    """The edit's content replaces the message's; the earlier text is kept in `edits`."""
    earlier = [*(message.edits or []), {"text": message.text, "until": outbox.iso(change.timestamp)}]
    Message.objects.filter(pk=message.pk).update(
        text=events.summarize(change.message),
        payload={**message.payload, **change.message},
        edits=earlier,
        edited_at=change.timestamp,
        updated_at=timezone.now(),
    )


def message_delete(message: Message, *, at: datetime) -> None:
    """Take a deleted message's content out of everywhere Kirim keeps it: its row (text, Meta's
    payload, earlier texts: search reads only these), its conversation's preview, the raw webhooks kept
    (which `reprocess_webhooks` would otherwise store again) and the events not yet delivered to
    subscribers. The row stays, marked deleted, so the thread shows where it was."""
    wamid = message.wamid
    assert wamid is not None  # a change names its message by wamid
    Message.objects.filter(pk=message.pk).update(
        text="", payload={}, edits=None, deleted_at=at, updated_at=timezone.now()
    )
    Conversation.objects.filter(
        phone_number_id=message.phone_number_id,
        contact_wa_id=message.contact_wa_id,
        last_message_at=message.timestamp,
    ).update(last_message_text=DELETED_PREVIEW)
    needles = _written_forms(wamid)
    kept = WebhookEvent.objects.filter(
        _containing(needles), received_at__gte=message.created_at - RECEIVED_BEFORE_STORED
    )
    for event in kept.only("pk", "body"):
        payload = json.loads(event.body)
        if events.without_message(payload, wamid):
            WebhookEvent.objects.filter(pk=event.pk).update(body=json.dumps(payload, separators=(",", ":")))

    def scrub(body: Any) -> bool:
        return not events.without_message(body, wamid) or events.has_items(body)

    outbox.pending_events_scrub(message.org_id, _containing(needles), scrub)


def _written_forms(wamid: str) -> set[str]:
    """A wamid as a JSON body may write it: plainly, or with `/` escaped (as Meta writes its bodies)."""
    plain = json.dumps(wamid)[1:-1]
    return {plain, plain.replace("/", "\\/")}


def _containing(needles: Iterable[str]) -> Q:
    query = Q(pk__in=[])
    for needle in needles:
        query |= Q(body__contains=needle)
    return query
