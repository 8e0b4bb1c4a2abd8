"""Writers of the inbox: sending messages, and what Meta's webhooks bring in. Read state is
`receipts.services.reads`'s alone."""

import itertools
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple, TypeVar

from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from core import metrics
from core.db.bulk import InsertRow
from core.parsers import loads_noting_unstorable
from inbox.models import (
    Message,
    WebhookEvent,
)
from inbox.services import business, coexistence
from inbox.services.inbound_rows import Numbers, _failures_told, _numbers, _store_inbound
from inbox.services.ingest_one_statement import INBOUND_IN_ONE_STATEMENT
from inbox.services.statuses import _apply_statuses
from meta import payloads
from meta.graph import Json
from outbox import record as outbox
from outbox.models import EventType, WebhookSubscription

logger = logging.getLogger("kirim.inbox")


# The items of a webhook that could not be stored.
Failures = list[payloads.Failure]


def webhook_receive(raw_body: bytes) -> Failures | None:
    """Apply a signed webhook and keep its raw body, in one transaction: a webhook answered 200 is
    stored with all it brought, and one whose transaction failed was answered 5xx, so Meta delivers
    it again. An item that cannot be stored is recorded on the event with its reason and the rest is
    applied; a bug that stops the whole payload is recorded the same way. Both are kept for
    `reprocess_webhooks`. Only a database outage propagates (the caller answers 5xx). Returns the
    items that failed, or None when a bug stopped the payload."""
    return _apply(raw_body.decode("utf-8", errors="replace").replace("\x00", "\ufffd"), event=None)


def webhook_reprocess(event_ids: Iterable[int]) -> tuple[int, dict[int, str]]:
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


def _apply(body: str, *, event: WebhookEvent | None) -> Failures | None:
    try:
        return _process(body, event)
    except DATABASE_DOWN:
        raise
    except Exception as error:
        logger.exception("webhook %s could not be applied; kept for reprocessing", event.pk if event else "(new)")
        reason = f"{type(error).__name__}: {error}"[:2000]
        if event is None:
            metrics.meta_webhook("unapplied")
            WebhookEvent.objects.create(body=body, error=reason)
        else:
            WebhookEvent.objects.filter(pk=event.pk).update(error=reason)
        return None


def _process(body: str, event: WebhookEvent | None) -> Failures:
    """Insert the inbound messages, move the statuses forward, record what subscribers asked for in
    the outbox, and record the event with each item that could not be stored and why: one
    transaction, a bounded number of queries whatever the payload's size, unless the database
    refuses an item nobody foresaw: then the payload is applied again one item at a time, each in its
    own savepoint, so only that item fails."""
    try:
        payload, suspect = loads_noting_unstorable(body)
    except ValueError:  # nested deeper than Python parses is a RecursionError: _apply records it as failed
        payload, parsed = None, payloads.ParsedWebhook(skipped=["body is not JSON"])
    else:
        parsed = payloads.parse(payload, suspect)
    failed = list(parsed.failed)
    messages = _storable(parsed.messages, failed, parsed.suspect)
    statuses = _storable(parsed.statuses, failed, parsed.suspect)
    more = _More(_storable(parsed.past, failed, parsed.suspect), _storable(parsed.changes, failed, parsed.suspect),
                 parsed.fields)  # fmt: skip
    if event is None and messages and not parsed.statuses and not more and connection.vendor == "postgresql":
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
                return _counted(parsed, failed, event)
    try:
        with transaction.atomic():
            inserted, moved, event_id = _in_steps(payload, messages, statuses, more, body, event, failed, alone=False)
    except DATABASE_DOWN:
        raise
    except (DatabaseError, ValueError):  # ValueError: an adapter refusing a value (SQLite's encoder)
        logger.warning("webhook: the database refused the payload; applying it item by item")
        with transaction.atomic():
            inserted, moved, event_id = _in_steps(payload, messages, statuses, more, body, event, failed, alone=True)
    logger.info(
        "webhook %s: %d/%d inbound stored, %d/%d statuses applied, failed=%s skipped=%s",
        event_id, len(inserted), len(parsed.messages), moved, len(parsed.statuses), failed, parsed.skipped,
    )  # fmt: skip
    return _counted(parsed, failed, event)


def _counted(parsed: payloads.ParsedWebhook, failed: Failures, event: WebhookEvent | None) -> Failures:
    """`failed`, a new webhook's items counted in the metrics first (a reprocessed one was counted)."""
    if event is None:
        items = len(parsed.messages) + len(parsed.statuses) + len(parsed.failed)
        outcome = "partial" if failed else "applied"
        metrics.meta_webhook(outcome, stored=items - len(failed), failed=len(failed))
    return failed


class _More(NamedTuple):
    """A webhook's items beyond inbound messages and statuses (inbox.services.coexistence, .business)."""

    past: list[payloads.PastMessage]  # echoes and history messages
    changes: list[payloads.Change]  # edits and deletions
    fields: list[payloads.FieldChange]  # the other followed fields' changes

    def __bool__(self) -> bool:
        return bool(self.past or self.changes or self.fields)


def _in_steps(
    payload: object,
    messages: list[payloads.InboundMessage],
    statuses: list[payloads.StatusUpdate],
    more: _More,
    body: str,
    event: WebhookEvent | None,
    failed: Failures,
    *,
    alone: bool,
) -> tuple[list[Message], int, int]:
    """The payload's work inside the caller's transaction; with `alone`, each item in its savepoint."""
    located: Iterable[payloads.Item | payloads.FieldChange] = itertools.chain(
        messages, statuses, more.past, more.changes, more.fields
    )
    numbers = _numbers({item.phone_number_id for item in located} - {""})
    subscribed_orgs = {n.org_id for n in numbers.values() if n.subscribed}
    subscriptions = outbox.subscriptions_of(subscribed_orgs) if subscribed_orgs else []

    def store(items: list[payloads.InboundMessage]) -> list[Message]:
        return _store_inbound(items, numbers)

    def store_past(items: list[payloads.PastMessage]) -> list[Message]:
        return coexistence.past_store(items, numbers)

    if alone:
        inserted = [row for rows in _each_alone(messages, store, failed) for row in rows]
        past = [row for rows in _each_alone(more.past, store_past, failed) for row in rows]
        moved = sum(_each_alone(statuses, _statuses_apply, failed))
    else:
        inserted, past, moved = store(messages), store_past(more.past), _statuses_apply(statuses)
    coexistence.changes_apply(more.changes, numbers, failed)
    told = business.fields_apply(more.fields, numbers)  # their orgs need not be among the numbers'
    if told_orgs := {org_id for _, orgs in told for org_id in orgs} - subscribed_orgs:
        subscriptions += outbox.subscriptions_of(told_orgs)
    if subscriptions:
        new_wamids = {m.wamid for m in (*inserted, *past)} | {c.wamid for c in more.changes}
        _events_out(payload, numbers, subscriptions, new_wamids, {s.wamid for s in statuses}, told)
    return inserted, moved, _record(body, event, failed)


def _statuses_apply(updates: Sequence[payloads.StatusUpdate]) -> int:
    """Move outbound messages up the status ladder, and keep the prices their statuses carry."""
    moved = _apply_statuses(updates)
    business.prices_record(updates)
    return moved


def _events_out(
    payload: object,
    numbers: Numbers,
    subscriptions: list[WebhookSubscription],
    new_wamids: set[str | None],
    stored_statuses: set[str],
    told: list[tuple[payloads.FieldChange, list[int]]],
) -> None:
    """Record `message.received` and `message.status` for the orgs that subscribed: each org gets
    Meta's payload holding only its own numbers' items, and only messages this webhook inserted (Meta
    delivers at least once) and statuses it could store. Called inside the ingestion's transaction:
    the outbox's rule."""
    numbers_of_org: defaultdict[int, set[str]] = defaultdict(set)
    for phone_number_id, number in numbers.items():
        numbers_of_org[number.org_id].add(phone_number_id)
    items_of_kind: tuple[tuple[str, str, Callable[[Json], bool]], ...] = (
        (EventType.MESSAGE_RECEIVED, "messages", lambda message: str(message.get("id")) in new_wamids),
        (EventType.MESSAGE_STATUS, "statuses", lambda status: str(status.get("id")) in stored_statuses),
    )
    for event_type, kind, also in items_of_kind:
        wanted = outbox.wanting(subscriptions, event_type)
        bodies: dict[int, Json] = {}
        for org_id in wanted:
            own = numbers_of_org[org_id]
            body = payloads.meta_subset(payload, kind, lambda number_id, item: number_id in own and also(item))  # noqa: B023
            if body is not None:
                bodies[org_id] = body
        if bodies:
            outbox.events_record(event_type, bodies, wanted)
    wabas_of_org: defaultdict[int, set[str]] = defaultdict(set)
    for change, orgs in told:
        for org_id in orgs:
            wabas_of_org[org_id].add(change.waba_id)
    for field, event_type in FIELD_EVENTS.items():
        wanted = outbox.wanting(subscriptions, event_type)
        bodies = {}
        for org_id in wanted:
            own, wabas = numbers_of_org[org_id], wabas_of_org[org_id]
            body = payloads.field_subset(
                payload,
                field,
                lambda waba_id, number_id: number_id in own if number_id else waba_id in wabas,  # noqa: B023
                lambda item: str(item.get("id")) in new_wamids,
            )
            if body is not None:
                bodies[org_id] = body
        if bodies:
            outbox.events_record(event_type, bodies, wanted)


# Meta's webhook fields beyond `messages`, each passed on whole as its own event type.
FIELD_EVENTS = {
    "smb_message_echoes": EventType.MESSAGE_ECHO,
    "history": EventType.MESSAGE_HISTORY,
    "smb_app_state_sync": EventType.CONTACT_SYNC,
    "message_template_status_update": EventType.TEMPLATE_STATUS,
    "template_category_update": EventType.TEMPLATE_CATEGORY,
    "message_template_quality_update": EventType.TEMPLATE_QUALITY,
    "phone_number_quality_update": EventType.NUMBER_QUALITY,
    "account_update": EventType.ACCOUNT_UPDATE,
}


Item = TypeVar("Item", bound=payloads.Item)


def _storable(items: Iterable[Item], failed: Failures, suspect: bool) -> list[Item]:
    good = []
    for item in items:
        reason = payloads.unstorable_reason(item, suspect)
        if reason is None:
            good.append(item)
        else:
            failed.append({"item": item.label, "reason": reason})
    return good


Result = TypeVar("Result")


def _each_alone(items: Iterable[Item], apply: Callable[[list[Item]], Result], failed: Failures) -> Iterator[Result]:
    for item in items:
        try:
            with transaction.atomic():
                yield apply([item])
        except DATABASE_DOWN:
            raise
        except (DatabaseError, ValueError) as error:
            failed.append({"item": item.label, "reason": f"{type(error).__name__}: {error}"[:500]})


KEEP_EVENT = InsertRow(WebhookEvent, "received_at", "body", "processed_at", "error", "failed_items", "attempts")


def _record(body: str, event: WebhookEvent | None, failed: Failures) -> int:
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
