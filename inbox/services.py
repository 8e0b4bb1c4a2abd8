"""Writers of the inbox: sending messages, and what Meta's webhooks bring in. Read state is
`receipts.services`'s alone."""

import json
import logging
from collections import defaultdict
from functools import reduce
from operator import or_

from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Case, JSONField, Q, Value, When
from django.utils import timezone

from inbox import events
from inbox.models import (
    OUTBOUND_RANK,
    Conversation,
    Direction,
    EarlyStatus,
    Message,
    PhoneNumber,
    Status,
    WebhookEvent,
    statuses_below,
)
from kirim import meta_graph
from kirim.errors import NotFound, UpstreamError
from outbox import record as outbox
from outbox.models import EventType

logger = logging.getLogger("kirim.inbox")


def message_send(*, phone_number, body):
    """Store the outbound message, then hand it to Meta. The row is kept whatever Meta answers:
    `accepted` with Meta's wamid, or `failed` with Meta's error (and UpstreamError raised)."""
    message = Message.objects.create(
        org_id=phone_number.org_id,
        phone_number=phone_number,
        direction=Direction.OUTBOUND,
        status=Status.PENDING,
        contact_wa_id=str(body["to"])[:32],
        type=body["type"],
        text=events.summarize(body),
        payload=body,
    )
    try:
        answer = meta_graph.send_message(phone_number, body)
    except UpstreamError as error:
        _update(message, status=Status.FAILED, error=error.upstream)
        raise
    _update(message, status=Status.ACCEPTED, wamid=answer.wamid, contact_wa_id=answer.wa_id or message.contact_wa_id)
    conversations_touch([message])
    if early_statuses_apply(EarlyStatus.objects.filter(wamid=message.wamid)):
        message.refresh_from_db(fields=["status", "error", "updated_at"])
    return message


def media_describe(*, org, media_id):
    """Meta's description of media `media_id` and the org's number whose token reads it. Meta scopes
    media to a WhatsApp Business Account, so one number per account is asked: another org's media is
    refused by Meta for every one, and answers exactly like missing media."""
    accounts = {}
    for number in org.phone_numbers.order_by("pk"):
        accounts.setdefault(number.waba_id or number.pk, number)
    for number in accounts.values():
        try:
            return number, meta_graph.media_info(number, media_id)
        except UpstreamError as error:
            if error.upstream.get("http_status") not in (400, 404):
                raise  # Meta failing, or refusing the number's token, is not "not this account's media"
    raise NotFound("No media with this id.", param="media_id")


def early_statuses_apply(early=None):
    """Apply kept statuses whose wamid a send has stored since, and forget them; how many applied.

    A send calls this for its own wamid. A status kept at the very moment its send was checking is
    missed there (neither saw the other's uncommitted row), so `purge_expired` calls it for all."""
    early = list(early if early is not None else EarlyStatus.objects.all())
    if not early:
        return 0
    updates = [events.StatusUpdate(e.phone_number_id, e.wamid, e.status, e.timestamp, e.errors) for e in early]
    stored = set(_outbound(updates).values_list("wamid", flat=True))
    applied = [e for e in early if e.wamid in stored]
    if applied:
        _apply_statuses([u for u in updates if u.wamid in stored], keep_unknown=False)
        EarlyStatus.objects.filter(pk__in=[e.pk for e in applied]).delete()
    return len(applied)


def _update(message, **fields):
    fields["updated_at"] = timezone.now()
    Message.objects.filter(pk=message.pk).update(**fields)
    for name, value in fields.items():
        setattr(message, name, value)


def webhook_receive(raw_body):
    """Keep the raw body first (nothing acknowledged is lost), then apply it. A payload that cannot
    be applied is logged and kept with its error; only a database outage propagates (so Meta retries)."""
    event = WebhookEvent.objects.create(body=raw_body.decode("utf-8", errors="replace").replace("\x00", "\ufffd"))
    try:
        webhook_process(event)
    except (OperationalError, InterfaceError):
        raise
    except Exception as error:
        logger.exception("webhook %s could not be applied; kept for reprocessing", event.pk)
        WebhookEvent.objects.filter(pk=event.pk).update(error=f"{type(error).__name__}: {error}"[:2000])
    return event


def webhook_process(event):
    """Apply one stored webhook: insert its inbound messages, move its statuses forward. A bounded
    number of queries whatever the payload's size."""
    try:
        payload = json.loads(event.body)
    except ValueError:
        payload, parsed = None, events.ParsedWebhook(skipped=["body is not JSON"])
    else:
        parsed = events.parse(payload)
    with transaction.atomic():
        numbers = _numbers_named(parsed)
        subscriptions = outbox.subscriptions_of({n.org_id for n in numbers.values()}) if numbers else []
        announce_new = outbox.wanting(subscriptions, EventType.MESSAGE_RECEIVED)
        stored_before = _stored_wamids(parsed.messages) if announce_new else set()
        stored = _store_inbound(parsed.messages, numbers)
        moved = _apply_statuses(parsed.statuses)
        if subscriptions:
            _events_out(payload, numbers, subscriptions, stored_before)
        WebhookEvent.objects.filter(pk=event.pk).update(processed_at=timezone.now())
    logger.info(
        "webhook %s: %d/%d inbound for known numbers, %d/%d statuses applied, skipped=%s",
        event.pk,
        stored,
        len(parsed.messages),
        moved,
        len(parsed.statuses),
        parsed.skipped,
    )


def _numbers_named(parsed):
    """{phone_number_id: PhoneNumber} of the known numbers the webhook's items are for."""
    named = {item.phone_number_id for item in (*parsed.messages, *parsed.statuses)}
    return PhoneNumber.objects.in_bulk(named, field_name="phone_number_id") if named else {}


def _stored_wamids(inbound):
    return set(Message.objects.filter(wamid__in=[m.wamid for m in inbound]).values_list("wamid", flat=True))


def _events_out(payload, numbers, subscriptions, stored_before):
    """Record `message.received` and `message.status` for the orgs that subscribed: each org gets
    Meta's payload holding only its own numbers' items, and only messages not stored before (Meta
    delivers at least once). Called inside the ingestion's transaction: the outbox's rule."""
    numbers_of_org = defaultdict(set)
    for phone_number_id, number in numbers.items():
        numbers_of_org[number.org_id].add(phone_number_id)
    is_new = lambda message: str(message.get("id"))[:255] not in stored_before
    for event_type, kind, also in (
        (EventType.MESSAGE_RECEIVED, "messages", is_new),
        (EventType.MESSAGE_STATUS, "statuses", lambda status: True),
    ):
        wanted = outbox.wanting(subscriptions, event_type)
        bodies = {}
        for org_id in wanted:
            own = numbers_of_org[org_id]
            body = events.meta_subset(payload, kind, lambda number_id, item: number_id in own and also(item))  # noqa: B023
            if body is not None:
                bodies[org_id] = body
        if bodies:
            outbox.events_record(event_type, bodies, wanted)


def _store_inbound(inbound, numbers):
    """Insert inbound messages; a wamid seen before (Meta delivers at least once) is left alone."""
    if not inbound:
        return 0
    rows = []
    for m in inbound:
        number = numbers.get(m.phone_number_id)
        if number is None:
            logger.warning(
                "inbound message %s for unknown phone_number_id %s kept raw only", m.wamid, m.phone_number_id
            )
            continue
        rows.append(
            Message(
                org_id=number.org_id,
                phone_number=number,
                wamid=m.wamid,
                direction=Direction.INBOUND,
                status=Status.RECEIVED,
                contact_wa_id=m.contact_wa_id,
                contact_name=m.contact_name,
                type=m.type,
                text=m.text,
                payload=m.payload,
                timestamp=m.timestamp,
            )
        )
    Message.objects.bulk_create(rows, ignore_conflicts=True)
    conversations_touch(rows)
    return len(rows)


def _apply_statuses(updates, *, keep_unknown=True):
    """Move outbound messages up the status ladder, never down: one UPDATE per target status for all
    wamids that reach it (failed included), each conditional on the row being below it. Statuses for wamids no message
    has yet are kept for their sends (`keep_unknown`). Returns rows changed."""
    highest = {}
    failures = {}
    for update in updates:
        if update.status == Status.FAILED:
            failures[update.wamid] = update
        elif update.status in OUTBOUND_RANK:
            current = highest.get(update.wamid)
            if current is None or OUTBOUND_RANK[update.status] > OUTBOUND_RANK[current.status]:
                highest[update.wamid] = update
        else:
            logger.info("status %r for %s ignored", update.status, update.wamid)
    by_target = defaultdict(list)
    for update in highest.values():
        by_target[update.status].append(update)
    now = timezone.now()
    changed = 0
    for target, group in by_target.items():
        changed += _outbound(group).filter(status__in=statuses_below(target)).update(status=target, updated_at=now)
    if failures:  # one UPDATE for all, each row given its own errors (wamids are unique)
        errors_of_each = Case(
            *(When(wamid=u.wamid, then=Value({"errors": u.errors}, JSONField())) for u in failures.values())
        )
        changed += (
            _outbound(failures.values())
            .filter(status__in=statuses_below(Status.FAILED))
            .update(status=Status.FAILED, error=errors_of_each, updated_at=now)
        )
    if keep_unknown:
        _keep_early([*highest.values(), *failures.values()])
    return changed


def _keep_early(updates):
    """Keep statuses whose wamid no outbound message has yet: its send may still be storing it."""
    wamids = {update.wamid for update in updates}
    if not wamids:
        return
    known = set(_outbound(updates).values_list("wamid", flat=True))
    early = [update for update in updates if update.wamid not in known]
    if early:
        logger.info("%d status(es) for wamids not stored yet kept for their sends", len(early))
        EarlyStatus.objects.bulk_create(
            EarlyStatus(phone_number_id=u.phone_number_id, wamid=u.wamid, status=u.status, errors=u.errors,
                        timestamp=u.timestamp)
            for u in early
        )  # fmt: skip


def _outbound(updates):
    """The outbound rows these updates name, each only on the number the webhook came for."""
    by_number = defaultdict(list)
    for update in updates:
        by_number[update.phone_number_id].append(update.wamid)
    on_their_numbers = reduce(
        or_, (Q(phone_number__phone_number_id=number, wamid__in=wamids) for number, wamids in by_number.items())
    )
    return Message.objects.filter(on_their_numbers, direction=Direction.OUTBOUND)


def conversations_touch(messages):
    """Bring the inbox rows of these messages' conversations up to date: one upsert statement for all
    of them, which only moves a conversation's last activity forward (messages arrive unordered)."""
    newest = {}
    for m in messages:
        key = (m.phone_number_id, m.contact_wa_id)
        if key not in newest or m.timestamp > newest[key].timestamp:
            newest[key] = m
    if not newest:
        return
    table = connection.ops.quote_name(Conversation._meta.db_table)
    sql = f"""
        INSERT INTO {table} (org_id, phone_number_id, contact_wa_id, contact_name, last_message_at,
                             last_message_text, last_direction)
        VALUES (%s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (phone_number_id, contact_wa_id) DO UPDATE SET
            contact_name = CASE WHEN excluded.contact_name <> '' THEN excluded.contact_name
                                ELSE {table}.contact_name END,
            last_message_at = excluded.last_message_at,
            last_message_text = excluded.last_message_text,
            last_direction = excluded.last_direction
        WHERE excluded.last_message_at >= {table}.last_message_at
    """
    params = [
        (
            m.org_id,
            m.phone_number_id,
            m.contact_wa_id,
            m.contact_name,
            connection.ops.adapt_datetimefield_value(m.timestamp),
            m.text[:200],
            m.direction,
        )
        for m in newest.values()
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
