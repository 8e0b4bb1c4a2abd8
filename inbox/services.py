"""Writers of the inbox: sending messages, and what Meta's webhooks bring in. Read state is
`receipts.services`'s alone."""

import json
import logging
import uuid
from collections import defaultdict
from contextlib import nullcontext
from datetime import datetime, timedelta
from functools import cached_property, reduce
from operator import or_
from typing import NamedTuple

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Case, F, JSONField, Q, Value, When
from django.utils import timezone

from inbox import events
from inbox.models import (
    CONTACT_KEY_LENGTH,
    FAILABLE,
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
from kirim.bulk import InsertRow, insert_new
from kirim.errors import IdempotencyInProgress, UpstreamError
from kirim.parsers import loads_noting_unstorable
from outbox import record as outbox
from outbox.models import EventType, WebhookSubscription

logger = logging.getLogger("kirim.inbox")


def message_send(*, phone_number, body, text=None, idempotency_record=None):
    """Store the outbound message, then hand it to Meta with no transaction open. The row is kept
    whatever happens: `accepted` with Meta's wamid; `failed` with Meta's error when Meta refused it,
    or could not be reached at all (UpstreamError raised, `meta_received` says which); `unconfirmed`
    when Meta may have it but its answer was lost (returned: its status webhook, matched by Kirim's id
    in biz_opaque_callback_data, settles it). `text` is the inbox's short text when the caller knows
    better than the body (a template, filled in).

    `idempotency_record` is the send's Idempotency-Key: taken over from a request that died, it
    answers that request's message as it stands instead of sending again."""
    if idempotency_record is not None and idempotency_record.taken_over:
        earlier = Message.objects.filter(idempotency_record=idempotency_record).first()
        if earlier is not None:
            return _outcome_of_earlier_send(earlier)
    lease_until = (
        idempotency_record.lease_expires_at
        if idempotency_record is not None
        else timezone.now() + timedelta(seconds=settings.META_CLAIM_LEASE)
    )
    message = Message.objects.create(
        org_id=phone_number.org_id,
        phone_number=phone_number,
        direction=Direction.OUTBOUND,
        status=Status.PENDING,
        contact_wa_id=str(body["to"])[:CONTACT_KEY_LENGTH],
        group_id=str(body["to"])[:CONTACT_KEY_LENGTH] if body.get("recipient_type") == "group" else "",
        type=body["type"],
        text=events.summarize(body) if text is None else text,
        payload=body,
        claim_token=uuid.uuid4(),  # in flight until settled, or until the lease says its sender died
        claim_expires_at=lease_until,
        idempotency_record=idempotency_record,
    )
    try:
        answer = meta_graph.send_message(phone_number, events.with_callback_data(body, message.external_id))
    except UpstreamError as error:
        if error.meta_received is None:  # not failed: Meta may be delivering it
            unconfirmed = {"status": Status.UNCONFIRMED, "error": error.upstream}
            return _settle_send(message, statuses_below(Status.UNCONFIRMED), unconfirmed)
        _settle_send(message, FAILABLE, {"status": Status.FAILED, "error": error.upstream})
        raise
    message = _settle_send(
        message,
        statuses_below(Status.ACCEPTED),
        {"status": Status.ACCEPTED},
        wamid=answer.wamid,
        contact_wa_id=answer.wa_id or message.contact_wa_id,
        message_status=answer.message_status,
    )
    conversations_touch([message])
    if early_statuses_apply(EarlyStatus.objects.filter(wamid=message.wamid)):
        message.refresh_from_db(fields=["status", "error", "updated_at"])
    return message


def cut_off_sends_unconfirm():
    """Sends whose request died during Meta's call (still pending, their lease run out): Meta may have
    them, so `unconfirmed`, for their status webhooks to settle. How many."""
    now = timezone.now()
    return Message.objects.filter(
        claim_expires_at__lte=now, direction=Direction.OUTBOUND, status=Status.PENDING
    ).update(status=Status.UNCONFIRMED, claim_token=None, claim_expires_at=None, updated_at=now)


# A send's fields that settling it, or a status webhook that came first, may have changed.
SETTLED_FIELDS = (
    "status", "error", "wamid", "contact_wa_id", "message_status", "claim_token", "claim_expires_at", "updated_at",
)  # fmt: skip


def _settle_send(message, below, outcome, **answered):
    """End the send's claim: the row takes the `outcome` (status, error) when its status is still one
    of `below`, and what Meta answered (wamid, contact, message_status) in any case. Returns `message`
    as the row now stands, which is what the doors render: a status webhook that came first (matched
    by Kirim's id, it gave the row its wamid and moved it further) is read back, never left out."""
    settle = {"claim_token": None, "claim_expires_at": None, "updated_at": timezone.now(), **answered}
    if Message.objects.filter(pk=message.pk, status__in=below).update(**settle, **outcome):
        for name, value in {**settle, **outcome}.items():
            setattr(message, name, value)  # the row is exactly what was written: no need to read it
        return message
    Message.objects.filter(pk=message.pk).update(**settle)
    message.refresh_from_db(fields=SETTLED_FIELDS)
    return message


def _outcome_of_earlier_send(message):
    """The answer to a send whose first request died (its Idempotency-Key's lease ran out): never a
    second call to Meta. Still pending, its call was cut off: Meta may have it, so `unconfirmed`."""
    if message.status == Status.PENDING:
        if message.claim_expires_at and message.claim_expires_at > timezone.now():
            raise IdempotencyInProgress()
        message = _settle_send(message, (Status.PENDING,), {"status": Status.UNCONFIRMED})
    if message.status == Status.FAILED:
        raise UpstreamError(upstream=message.error)
    return message


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
    """Apply a signed webhook and keep its raw body, in one transaction: a webhook answered 200 is
    stored with all it brought, and one whose transaction failed was answered 5xx, so Meta delivers
    it again. An item that cannot be stored is recorded on the event with its reason and the rest is
    applied; a bug that stops the whole payload is recorded the same way. Both are kept for
    `reprocess_webhooks`. Only a database outage propagates (the caller answers 5xx). Returns the
    items that failed, or None when a bug stopped the payload."""
    return _apply(raw_body.decode("utf-8", errors="replace").replace("\x00", "\ufffd"), event=None)


def webhook_reprocess(event_ids):
    """Apply kept events again (after a fix, or a worker that died mid-way). Safe to repeat: a wamid
    is stored once and statuses only move up. Returns (events reprocessed, {event id: why it still
    fails} for those not applied whole: their `failure`, as applying them again recorded it)."""
    events = WebhookEvent.objects.filter(pk__in=event_ids)
    events.update(attempts=F("attempts") + 1)
    reprocessed = 0
    for event in events.order_by("pk"):
        _apply(event.body, event=event)
        reprocessed += 1
    still_failing = events.exclude(pk__in=WebhookEvent.objects.applied()).only("error", "processed_at")
    return reprocessed, {event.pk: event.failure for event in still_failing.order_by("pk")}


# The database is unreachable or the connection broke: nothing can be recorded, so the webhook must
# be answered 5xx for Meta to deliver it again.
DATABASE_DOWN = (OperationalError, InterfaceError)


def _apply(body, *, event):
    try:
        return _process(body, event)
    except DATABASE_DOWN:
        raise
    except Exception as error:
        logger.exception("webhook %s could not be applied; kept for reprocessing", event.pk if event else "(new)")
        reason = f"{type(error).__name__}: {error}"[:2000]
        if event is None:
            WebhookEvent.objects.create(body=body, error=reason)
        else:
            WebhookEvent.objects.filter(pk=event.pk).update(error=reason)
        return None


def _process(body, event):
    """Insert the inbound messages, move the statuses forward, record what subscribers asked for in
    the outbox, and record the event with each item that could not be stored and why: one
    transaction, a bounded number of queries whatever the payload's size, unless the database
    refuses an item nobody foresaw: then the payload is applied again one item at a time, each in its
    own savepoint, so only that item fails."""
    try:
        payload, suspect = loads_noting_unstorable(body)
    except ValueError:  # nested deeper than Python parses is a RecursionError: _apply records it as failed
        payload, parsed = None, events.ParsedWebhook(skipped=["body is not JSON"])
    else:
        parsed = events.parse(payload, suspect)
    failed = list(parsed.failed)
    messages = _storable(parsed.messages, failed, parsed.suspect)
    statuses = _storable(parsed.statuses, failed, parsed.suspect)
    if event is None and messages and not parsed.statuses and connection.vendor == "postgresql":
        try:
            done = INBOUND_IN_ONE_STATEMENT.run(messages, body, failed)
        except DATABASE_DOWN:
            raise
        except (DatabaseError, ValueError):
            logger.warning("webhook: the one-statement path was refused; applying the payload in steps")
        else:
            if done is not None:
                event_id, stored = done
                logger.info("webhook %s: %d/%d inbound stored, failed=%s", event_id, stored, len(messages), failed)
                return failed
    try:
        with transaction.atomic():
            inserted, moved, event_id = _in_steps(payload, messages, statuses, body, event, failed, alone=False)
    except DATABASE_DOWN:
        raise
    except (DatabaseError, ValueError):  # ValueError: an adapter refusing a value (SQLite's encoder)
        logger.warning("webhook: the database refused the payload; applying it item by item")
        with transaction.atomic():
            inserted, moved, event_id = _in_steps(payload, messages, statuses, body, event, failed, alone=True)
    logger.info(
        "webhook %s: %d/%d inbound stored, %d/%d statuses applied, failed=%s skipped=%s",
        event_id, len(inserted), len(parsed.messages), moved, len(parsed.statuses), failed, parsed.skipped,
    )  # fmt: skip
    return failed


def _in_steps(payload, messages, statuses, body, event, failed, *, alone):
    """The payload's work inside the caller's transaction; with `alone`, each item in its savepoint."""
    numbers = _numbers({item.phone_number_id for item in (*messages, *statuses)})
    subscribed_orgs = {n.org_id for n in numbers.values() if n.subscribed}
    subscriptions = outbox.subscriptions_of(subscribed_orgs) if subscribed_orgs else []
    store = lambda items: _store_inbound(items, numbers)
    if alone:
        inserted = [row for rows in _each_alone(messages, store, failed) for row in rows]
        moved = sum(_each_alone(statuses, _apply_statuses, failed))
    else:
        inserted = store(messages)
        moved = _apply_statuses(statuses)
    if subscriptions:
        _events_out(payload, numbers, subscriptions, {m.wamid for m in inserted}, {s.wamid for s in statuses})
    return inserted, moved, _record(body, event, failed)


def _events_out(payload, numbers, subscriptions, new_wamids, stored_statuses):
    """Record `message.received` and `message.status` for the orgs that subscribed: each org gets
    Meta's payload holding only its own numbers' items, and only messages this webhook inserted (Meta
    delivers at least once) and statuses it could store. Called inside the ingestion's transaction:
    the outbox's rule."""
    numbers_of_org = defaultdict(set)
    for phone_number_id, number in numbers.items():
        numbers_of_org[number.org_id].add(phone_number_id)
    for event_type, kind, also in (
        (EventType.MESSAGE_RECEIVED, "messages", lambda message: str(message.get("id")) in new_wamids),
        (EventType.MESSAGE_STATUS, "statuses", lambda status: str(status.get("id")) in stored_statuses),
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


class _InboundInOneStatement:
    """PostgreSQL, Meta's common case (a webhook of inbound messages): the numbers looked up, each
    message's conversation found by its contact's user id, the messages inserted (a wamid stored
    before is left alone), their conversations upserted and the event kept, all by one statement in
    autocommit: one round trip, where the steps cost seven (BEGIN, five statements, COMMIT). An org
    with webhook subscriptions takes the steps, which also write the outbox. The same
    rows and the same rules as `_store_inbound`, `_conversation_keys` and `conversations_touch`; the
    tests run both paths (this one on PostgreSQL, the steps on SQLite and for statuses)."""

    EXTRA = ("meta_number", "lookup_user_id", "conversation_user_id", "conversation_name")

    @cached_property
    def _columns(self):
        """Message's columns given per row: all but the primary key and the two the number gives."""
        return [f for f in Message._meta.concrete_fields if not f.primary_key and f.name not in ("org", "phone_number")]

    @cached_property
    def _sql(self):
        """Under psycopg's limit for caching a statement's conversion (MAX_CACHED_STATEMENT_LENGTH,
        4096 characters; a test holds it there): past it, the conversion is redone on every webhook."""
        quote = connection.ops.quote_name
        message, number, conversation, event, subscription = (
            quote(model._meta.db_table)
            for model in (Message, PhoneNumber, Conversation, WebhookEvent, WebhookSubscription)
        )
        typed = ", ".join([f"{quote(f.column)} {f.db_type(connection)}" for f in self._columns]
                          + [f"{name} text" for name in self.EXTRA])  # fmt: skip
        given = {"contact_wa_id": "contact_key", "org_id": "number_org", "phone_number_id": "number_pk"}
        inserted_columns = [f.column for f in Message._meta.concrete_fields if not f.primary_key]
        values = ", ".join(given.get(column, quote(column)) for column in inserted_columns)
        return " ".join(
            f"""
            WITH incoming AS (SELECT * FROM jsonb_to_recordset(%s::jsonb) AS i({typed})),
            subscribed AS (
                SELECT EXISTS (SELECT 1 FROM {subscription} s JOIN {number} n ON n.org_id = s.org_id
                               WHERE s.enabled AND n.phone_number_id IN (SELECT meta_number FROM incoming)) AS yes
            ),
            numbered AS (
                SELECT i.*, n.id AS number_pk, n.org_id AS number_org,
                       COALESCE((SELECT c.contact_wa_id FROM {conversation} c
                                 WHERE c.phone_number_id = n.id AND i.lookup_user_id <> ''
                                   AND c.contact_user_id = i.lookup_user_id LIMIT 1),
                                i.contact_wa_id) AS contact_key
                FROM incoming i JOIN {number} n ON n.phone_number_id = i.meta_number
                WHERE NOT (SELECT yes FROM subscribed)
            ),
            inserted AS (
                INSERT INTO {message} ({", ".join(quote(c) for c in inserted_columns)})
                SELECT {values} FROM numbered
                ON CONFLICT (wamid) DO NOTHING
                RETURNING "wamid", "org_id", "phone_number_id", "contact_wa_id", "timestamp", "text"
            ),
            touched AS (
                INSERT INTO {conversation} AS c (org_id, phone_number_id, contact_wa_id, contact_user_id,
                                                 contact_name, last_message_at, last_message_text, last_direction)
                SELECT DISTINCT ON (m.phone_number_id, m.contact_wa_id)
                       m.org_id, m.phone_number_id, m.contact_wa_id, n.conversation_user_id, n.conversation_name,
                       m.timestamp, left(m.text, 200), %s
                FROM inserted m JOIN numbered n ON n.wamid = m.wamid
                ORDER BY m.phone_number_id, m.contact_wa_id, m.timestamp DESC
                {CONVERSATION_UPSERT}
            ),
            kept AS (
                INSERT INTO {event} (received_at, body, processed_at, error, failed_items, attempts)
                SELECT %s, %s, %s, %s, %s::jsonb, 1 WHERE NOT (SELECT yes FROM subscribed) RETURNING id
            )
            SELECT (SELECT yes FROM subscribed), (SELECT id FROM kept), (SELECT count(*) FROM inserted),
                   (SELECT count(*) FROM numbered)
        """.split()
        )

    def run(self, inbound, body, failed):
        """(event id, messages inserted); None, having written nothing, when one of the numbers' orgs
        has a webhook subscription: events out are recorded by the steps."""
        unique = list({m.wamid: m for m in reversed(inbound)}.values())[::-1]  # the first of each wamid
        now, summary = timezone.now(), _failures_told(failed)
        stamp, rows = now.isoformat(), []
        for m in unique:
            extra = (m.phone_number_id, "" if m.group_id else m.contact_user_id, *_conversation_identity(m))
            rows.append(self._row(_inbound_values(m, _fallback_key(m, unique)), stamp)
                        | dict(zip(self.EXTRA, extra, strict=True)))  # fmt: skip
        # All rows as one JSON document: one parameter to adapt, where an array per column took 26.
        params = [json.dumps(rows), Direction.INBOUND, now, body, now, summary, json.dumps(failed)]
        with transaction.atomic() if connection.in_atomic_block else nullcontext(), connection.cursor() as cursor:
            cursor.execute(self._sql, params)
            subscribed, event_id, stored, ours = cursor.fetchone()
        if subscribed:  # the outbox's events are written by the steps, in their transaction
            return None
        if ours < len(unique):
            logger.warning("webhook %s: %d inbound message(s) for unknown numbers kept raw only", event_id,
                           len(unique) - ours)  # fmt: skip
        return event_id, stored

    def _row(self, values, stamp):
        """The JSON document's row for a message of these field values; the other columns as a new
        Message would have them, without building one (~0.1 ms of a webhook's ~0.6 ms of Python): constant
        defaults prepared once, callable ones called, `auto_now` fields `stamp`. Times as ISO 8601 text,
        which json.dumps writes on its C path, where a `default` would be called back for each."""
        constant, called, stamped = self._defaults
        row = dict(constant)
        row.update((column, _as_json(default())) for column, default in called)
        row.update((column, stamp) for column in stamped)
        row.update((self._column_of[name], _as_json(value)) for name, value in values.items())
        return row

    @cached_property
    def _column_of(self):
        return {f.name: f.column for f in self._columns}

    @cached_property
    def _defaults(self):
        """(constant {column: value}, [(column, callable)], [auto_now column]). A column whose default
        is None is left out of the rows: NULL all the same, in a shorter document."""
        constant, called, stamped = {}, [], []
        for f in self._columns:
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                stamped.append(f.column)
            elif f.has_default() and callable(f.default):
                called.append((f.column, f.default))
            elif (value := f.get_default()) is not None:
                constant[f.column] = value if isinstance(f, JSONField) else f.get_db_prep_save(value, connection)
        return constant, called, stamped


INBOUND_IN_ONE_STATEMENT = _InboundInOneStatement()


def _as_json(value):
    """A field's value as the one statement's row document holds it: a time as ISO 8601 text."""
    return value.isoformat() if isinstance(value, datetime) else value


def _fallback_key(message, payload):
    """A message's conversation when none knows its contact's user id yet: the group; the number, also
    when another message of the payload gave it beside the same user id; else the user id."""
    if message.group_id:
        return message.group_id
    if message.contact_wa_id or not message.contact_user_id:
        return message.contact_wa_id
    same_user = (
        m.contact_wa_id for m in payload
        if m.contact_user_id == message.contact_user_id and m.contact_wa_id and m.phone_number_id == message.phone_number_id
    )  # fmt: skip
    return next(same_user, message.contact_user_id)


def _storable(items, failed, suspect):
    good = []
    for item in items:
        reason = events.unstorable_reason(item, suspect)
        if reason is None:
            good.append(item)
        else:
            failed.append({"item": item.label, "reason": reason})
    return good


def _each_alone(items, apply, failed):
    for item in items:
        try:
            with transaction.atomic():
                yield apply([item])
        except DATABASE_DOWN:
            raise
        except (DatabaseError, ValueError) as error:
            failed.append({"item": item.label, "reason": f"{type(error).__name__}: {error}"[:500]})


KEEP_EVENT = InsertRow(WebhookEvent, "received_at", "body", "processed_at", "error", "failed_items", "attempts")


def _record(body, event, failed):
    """Write the event, applied, with its failed items (which keep it on the operators' list): a new
    one by one INSERT, a kept one by an UPDATE. Returns its id."""
    summary = _failures_told(failed)
    now = timezone.now()
    if event is not None:
        WebhookEvent.objects.filter(pk=event.pk).update(processed_at=now, error=summary, failed_items=failed)
        return event.pk
    return KEEP_EVENT.execute(
        received_at=now, body=body, processed_at=now, error=summary, failed_items=failed, attempts=1
    )


def _failures_told(failed):
    """The event's `error` for the items that could not be stored ("" for none), logged."""
    summary = "; ".join(f"{f['item']}: {f['reason']}" for f in failed)
    if failed:
        logger.error("webhook: %d item(s) could not be stored: %s", len(failed), summary)
    return summary


def _inbound_values(m, contact_key):
    """The Message fields of parsed inbound message `m` in conversation `contact_key`: what both
    ingestion paths store of it (the rest are the fields' defaults)."""
    return {"wamid": m.wamid, "direction": Direction.INBOUND, "status": Status.RECEIVED, "contact_wa_id": contact_key,
            "contact_user_id": m.contact_user_id, "group_id": m.group_id, "contact_name": m.contact_name,
            "type": m.type, "text": m.text, "payload": m.payload, "timestamp": m.timestamp}  # fmt: skip


def _conversation_identity(m):
    """What a message's conversation learns of its contact (a group's sender is not the group)."""
    return ("", "") if m.group_id else (m.new_user_id or m.contact_user_id, m.contact_name)


def _inbound_row(m, contact_key, **number):
    """The Message row of `m`, with its `conversation_identity`."""
    row = Message(**_inbound_values(m, contact_key), **number)
    row.conversation_identity = _conversation_identity(m)
    return row


def _store_inbound(inbound, numbers):
    """Insert inbound messages, each into its conversation; a wamid stored before (Meta delivers at
    least once, and a wamid may even be replayed on another number) is left alone and touches no
    conversation. Returns the rows inserted."""
    if not inbound:
        return []
    ours = []
    for m in inbound:
        if m.phone_number_id in numbers:
            ours.append(m)
        else:
            logger.warning(
                "inbound message %s for unknown phone_number_id %s kept raw only", m.wamid, m.phone_number_id
            )
    conversation_of = _conversation_keys(ours, numbers)
    rows = []
    for m in ours:
        number = numbers[m.phone_number_id]
        rows.append(_inbound_row(m, conversation_of(m, number), org_id=number.org_id, phone_number_id=number.pk))
    inserted = insert_new(rows, unique_field="wamid")
    conversations_touch(inserted)
    return inserted


class _Number(NamedTuple):
    pk: int
    org_id: int
    subscribed: bool  # its org has an enabled webhook subscription


def _numbers(phone_number_ids):
    """{phone_number_id: _Number} of the numbers Kirim has among these, whether their org has an
    enabled subscription included (most have none: no second query for them), by a statement written
    once: the ORM's in_bulk compiles its query on every webhook."""
    if not phone_number_ids:
        return {}
    table, subscription = (
        connection.ops.quote_name(model._meta.db_table) for model in (PhoneNumber, WebhookSubscription)
    )
    placeholders = ", ".join(["%s"] * len(phone_number_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT n.phone_number_id, n.id, n.org_id, EXISTS (SELECT 1 FROM {subscription} s "
            f"WHERE s.org_id = n.org_id AND s.enabled) FROM {table} n WHERE n.phone_number_id IN ({placeholders})",
            list(phone_number_ids),
        )
        return {row[0]: _Number(row[1], row[2], bool(row[3])) for row in cursor.fetchall()}


def _conversation_keys(inbound, numbers):
    """How to find each message's conversation: a group's is the group; a contact's is the one that
    already knows its business-scoped user id (so it goes on when the number is gone or changed), else
    its phone number, else that user id. One query, only when the payload carries user ids."""
    user_ids = {m.contact_user_id for m in inbound if m.contact_user_id and not m.group_id}
    known = {}
    if user_ids:
        known = {
            (number_pk, user_id): key
            for number_pk, user_id, key in Conversation.objects.filter(
                phone_number__in=[numbers[m.phone_number_id].pk for m in inbound], contact_user_id__in=user_ids
            ).values_list("phone_number_id", "contact_user_id", "contact_wa_id")
        }

    def conversation_of(message, number):
        if message.group_id:
            return message.group_id
        return known.get((number.pk, message.contact_user_id)) or _fallback_key(message, inbound)

    return conversation_of


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
        changed += _keep_early([*highest.values(), *failures.values()])
    return changed


def _keep_early(updates):
    """Statuses whose wamid no outbound message has yet. A send whose answer from Meta was lost is found
    by Kirim's id (echoed in biz_opaque_callback_data), given the wamid and moved; the others are kept
    for their sends, which may still be storing the wamid. Returns rows changed."""
    if not updates:
        return 0
    known = set(_outbound(updates).values_list("wamid", flat=True))
    early = [update for update in updates if update.wamid not in known]
    changed = 0
    lost_answers = [update for update in early if update.message_id]
    if lost_answers:
        adopted = _adopt_wamids(lost_answers)
        changed = _apply_statuses([u for u in lost_answers if u.wamid in adopted], keep_unknown=False)
        early = [update for update in early if update.wamid not in adopted]
    if early:
        logger.info("%d status(es) for wamids not stored yet kept for their sends", len(early))
        EarlyStatus.objects.bulk_create(
            EarlyStatus(phone_number_id=u.phone_number_id, wamid=u.wamid, status=u.status, errors=u.errors,
                        timestamp=u.timestamp)
            for u in early
        )  # fmt: skip
    return changed


def _adopt_wamids(updates):
    """Give each send named by Kirim's id in these statuses the wamid Meta reported, where it has none
    (its answer was lost); one UPDATE for all. The wamids now stored."""
    on_their_numbers = reduce(
        or_, (Q(phone_number__phone_number_id=u.phone_number_id, external_id=u.message_id) for u in updates)
    )
    wamid_of_each = Case(*(When(external_id=u.message_id, then=Value(u.wamid)) for u in updates))
    Message.objects.filter(on_their_numbers, direction=Direction.OUTBOUND, wamid__isnull=True).update(
        wamid=wamid_of_each, updated_at=timezone.now()
    )
    adopted = set(_outbound(updates).values_list("wamid", flat=True))
    if adopted:
        logger.info("%d send(s) whose answer was lost matched by their status webhooks", len(adopted))
    return adopted


def _outbound(updates):
    """The outbound rows these updates name, each only on the number the webhook came for."""
    by_number = defaultdict(list)
    for update in updates:
        by_number[update.phone_number_id].append(update.wamid)
    on_their_numbers = reduce(
        or_, (Q(phone_number__phone_number_id=number, wamid__in=wamids) for number, wamids in by_number.items())
    )
    return Message.objects.filter(on_their_numbers, direction=Direction.OUTBOUND)


# The ON CONFLICT clause of a conversation's upsert, the table named `c`: activity and preview move
# forward only; the contact's user id and name come from the newest message that has them.
_NEWER = "excluded.last_message_at >= c.last_message_at"
CONVERSATION_UPSERT = f"""
    ON CONFLICT (phone_number_id, contact_wa_id) DO UPDATE SET
        contact_user_id = CASE WHEN excluded.contact_user_id <> '' AND ({_NEWER} OR c.contact_user_id = '')
                               THEN excluded.contact_user_id ELSE c.contact_user_id END,
        contact_name = CASE WHEN excluded.contact_name <> '' AND {_NEWER}
                            THEN excluded.contact_name ELSE c.contact_name END,
        last_message_at = CASE WHEN {_NEWER} THEN excluded.last_message_at ELSE c.last_message_at END,
        last_message_text = CASE WHEN {_NEWER} THEN excluded.last_message_text ELSE c.last_message_text END,
        last_direction = CASE WHEN {_NEWER} THEN excluded.last_direction ELSE c.last_direction END
"""


def conversations_touch(messages):
    """Bring the inbox rows of these messages' conversations up to date: one upsert statement for all
    of them, which only moves a conversation's last activity forward (messages arrive unordered). The
    contact's business-scoped user id and name come from the newest message that has them (an inbound
    row's `conversation_identity`; a send knows neither)."""
    newest = {}
    for m in messages:
        key = (m.phone_number_id, m.contact_wa_id)
        if key not in newest or m.timestamp > newest[key].timestamp:
            newest[key] = m
    if not newest:
        return
    table = connection.ops.quote_name(Conversation._meta.db_table)
    sql = f"""
        INSERT INTO {table} AS c (org_id, phone_number_id, contact_wa_id, contact_user_id, contact_name,
                                  last_message_at, last_message_text, last_direction)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
        {CONVERSATION_UPSERT}
    """
    params = []
    for m in newest.values():
        user_id, name = getattr(m, "conversation_identity", ("", m.contact_name))
        params.append(
            (
                m.org_id,
                m.phone_number_id,
                m.contact_wa_id,
                user_id,
                name,
                connection.ops.adapt_datetimefield_value(m.timestamp),
                m.text[:200],
                m.direction,
            )
        )
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
