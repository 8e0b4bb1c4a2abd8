"""Writers of the inbox: sending messages, and what Meta's webhooks bring in. Read state is
`receipts.services.reads`'s alone."""

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import NamedTuple, TypedDict, TypeVar

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from core.db.bulk import insert_new
from core.ids import new_public_id
from inbox.models import (
    Conversation,
    ConversationState,
    Direction,
    Message,
    PhoneNumber,
    Status,
)
from inbox.services import teaminbox
from meta import payloads
from meta.graph import Json
from outbox.models import WebhookSubscription

logger = logging.getLogger("kirim.inbox")


class InboundValues(TypedDict):
    """The Message fields an inbound message's row is given; the others keep their defaults."""

    wamid: str
    direction: str
    status: str
    contact_wa_id: str
    contact_user_id: str
    group_id: str
    contact_name: str
    type: str
    text: str
    payload: Json
    timestamp: datetime


def _inbound_values(m: payloads.InboundMessage, contact_key: str) -> InboundValues:
    """The Message fields of parsed inbound message `m` in conversation `contact_key`: what both
    ingestion paths store of it (the rest are the fields' defaults)."""
    return {"wamid": m.wamid, "direction": Direction.INBOUND, "status": Status.RECEIVED, "contact_wa_id": contact_key,
            "contact_user_id": m.contact_user_id, "group_id": m.group_id, "contact_name": m.contact_name,
            "type": m.type, "text": m.text, "payload": m.payload, "timestamp": m.timestamp}  # fmt: skip


class ConversationIdentity(NamedTuple):
    """What a conversation learns of its contact from one of its messages (conversations_touch)."""

    user_id: str
    name: str


def _conversation_identity(m: payloads.InboundMessage) -> ConversationIdentity:
    """What a message's conversation learns of its contact (a group's sender is not the group)."""
    if m.group_id:
        return ConversationIdentity("", "")
    return ConversationIdentity(m.new_user_id or m.contact_user_id, m.contact_name)


def _store_inbound(inbound: Sequence[payloads.InboundMessage], numbers: "Numbers") -> list[Message]:
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
    identities: dict[str, ConversationIdentity] = {}
    for m in ours:
        number = numbers[m.phone_number_id]
        rows.append(
            Message(**_inbound_values(m, conversation_of(m, number)), org_id=number.org_id, phone_number_id=number.pk)
        )
        identities.setdefault(m.wamid, _conversation_identity(m))  # the first of a wamid is the row inserted
    inserted = insert_new(rows, unique_field="wamid")
    # Who opens a conversation matters to subscribers (a reopening is an event) and to a round robin.
    watched = any(numbers[m.phone_number_id].subscribed or numbers[m.phone_number_id].auto_assign for m in ours)
    opened = conversations_touch(inserted, identities=identities, report_opened=watched)
    if opened:
        teaminbox.conversations_opened(opened)
    return inserted


class _Number(NamedTuple):
    pk: int
    org_id: int
    subscribed: bool  # its org has an enabled webhook subscription
    auto_assign: bool  # it assigns new conversations in turn (inbox.services.teaminbox)


# {Meta's phone_number_id: _Number} of the numbers Kirim has among a webhook's.
Numbers = dict[str, _Number]


# A fast path, with its plain path and their equivalence test: docs/development/performance.md.
def _numbers(phone_number_ids: set[str]) -> Numbers:
    """{phone_number_id: _Number} of the numbers Kirim has among these, whether their org has an
    enabled subscription (most have none: no second query for them) and whether they assign
    automatically included, by a statement written once: the ORM's in_bulk compiles its query on
    every webhook."""
    if not phone_number_ids:
        return {}
    table, subscription = (
        connection.ops.quote_name(model._meta.db_table) for model in (PhoneNumber, WebhookSubscription)
    )
    placeholders = ", ".join(["%s"] * len(phone_number_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT n.phone_number_id, n.id, n.org_id, EXISTS (SELECT 1 FROM {subscription} s "
            f"WHERE s.org_id = n.org_id AND s.enabled), n.auto_assign FROM {table} n "
            f"WHERE n.phone_number_id IN ({placeholders})",
            list(phone_number_ids),
        )
        return {row[0]: _Number(row[1], row[2], bool(row[3]), bool(row[4])) for row in cursor.fetchall()}


Inbound = TypeVar("Inbound", bound=payloads.InboundMessage)


def _conversation_keys(inbound: Sequence[Inbound], numbers: Numbers) -> Callable[[Inbound, _Number], str]:
    """How to find each message's conversation: a group's is the group; a contact's is the one that
    already knows its business-scoped user id (so it goes on when the number is gone or changed), else
    its phone number, else that user id. One query, only when the payload carries user ids."""
    user_ids = {m.contact_user_id for m in inbound if m.contact_user_id and not m.group_id}
    known: dict[tuple[int, str], str] = {}
    if user_ids:
        known = {
            (number_pk, user_id): key
            for number_pk, user_id, key in Conversation.objects.filter(
                phone_number__in=[numbers[m.phone_number_id].pk for m in inbound], contact_user_id__in=user_ids
            ).values_list("phone_number_id", "contact_user_id", "contact_wa_id")
        }

    def conversation_of(message: Inbound, number: _Number) -> str:
        if message.group_id:
            return message.group_id
        return known.get((number.pk, message.contact_user_id)) or _fallback_key(message, inbound)

    return conversation_of


# The ON CONFLICT clause of a conversation's upsert, the table named `c`: activity and preview move
# forward only; the contact's user id and name come from the newest message that has them. The
# contact writing again (`excluded.opened_at`: the time of an inbound row, NULL for an outbound one)
# reopens a resolved or snoozed conversation and starts a cycle for the reports when none is open; a
# late-delivered older message does neither. Resolving ends the cycle (inbox.services.teaminbox).
_NEWER = "excluded.last_message_at >= c.last_message_at"
# An inbound row newer than the conversation's activity (`opened_at` is its time; NULL never compares).
_CONTACT_WROTE = "excluded.opened_at >= c.last_message_at"
CONVERSATION_UPSERT = f"""
    ON CONFLICT (phone_number_id, contact_wa_id) DO UPDATE SET
        state = CASE WHEN {_CONTACT_WROTE} AND c.state IN ('resolved', 'snoozed') THEN 'open' ELSE c.state END,
        opened_at = COALESCE(c.opened_at, CASE WHEN {_CONTACT_WROTE} THEN excluded.opened_at END),
        contact_user_id = CASE WHEN excluded.contact_user_id <> '' AND ({_NEWER} OR c.contact_user_id = '')
                               THEN excluded.contact_user_id ELSE c.contact_user_id END,
        contact_name = CASE WHEN excluded.contact_name <> '' AND {_NEWER}
                            THEN excluded.contact_name ELSE c.contact_name END,
        last_message_at = CASE WHEN {_NEWER} THEN excluded.last_message_at ELSE c.last_message_at END,
        last_message_text = CASE WHEN {_NEWER} THEN excluded.last_message_text ELSE c.last_message_text END,
        last_direction = CASE WHEN {_NEWER} THEN excluded.last_direction ELSE c.last_direction END
"""


def conversations_touch(
    messages: Iterable[Message],
    *,
    identities: Mapping[str, ConversationIdentity] | None = None,
    report_opened: bool = False,
) -> list[teaminbox.Opened]:
    """Bring the inbox rows of these messages' conversations up to date: one upsert statement for all
    of them, which only moves a conversation's last activity forward (messages arrive unordered). The
    contact's business-scoped user id and name come from the newest message that has them (`identities`,
    by wamid: an inbound row's; a send knows neither). With `report_opened`, returns the
    conversations the messages opened (teaminbox.Opened): two more statements, the rows' states
    read (and locked) before the upsert and after it."""
    newest: dict[tuple[int, str], Message] = {}
    for m in messages:
        key = (m.phone_number_id, m.contact_wa_id)
        if key not in newest or m.timestamp > newest[key].timestamp:
            newest[key] = m
    if not newest:
        return []
    before = _conversations(newest, lock=True) if report_opened else {}
    table = connection.ops.quote_name(Conversation._meta.db_table)
    sql = f"""
        INSERT INTO {table} AS c (org_id, phone_number_id, contact_wa_id, contact_user_id, contact_name,
                                  last_message_at, last_message_text, last_direction, external_id, opened_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        {CONVERSATION_UPSERT}
    """
    params = []
    for m in newest.values():
        user_id, name = (identities or {}).get(m.wamid or "", ConversationIdentity("", m.contact_name))
        at = connection.ops.adapt_datetimefield_value(m.timestamp)
        params.append(
            (
                m.org_id,
                m.phone_number_id,
                m.contact_wa_id,
                user_id,
                name,
                at,
                m.text[:200],
                m.direction,
                new_public_id("cnv"),  # kept only when the row is new
                at if m.direction == Direction.INBOUND else None,
            )
        )
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
    if not report_opened:
        return []
    now = timezone.now()
    opened: list[teaminbox.Opened] = []
    for key, row in _conversations(newest).items():
        if row.state != ConversationState.OPEN:
            continue
        was = teaminbox.shown_state(before[key], now) if key in before else None
        if was != ConversationState.OPEN:
            opened.append(teaminbox.Opened(row.pk, was))
    return opened


def _conversations(
    messages_by_key: Iterable[tuple[int, str]], *, lock: bool = False
) -> dict[tuple[int, str], Conversation]:
    """{(number pk, contact): conversation} of those of these keys that exist, their state only; with
    `lock`, their rows locked in primary-key order until the transaction ends."""
    keys = Q(pk__in=[])
    for number_pk, contact in messages_by_key:
        keys |= Q(phone_number_id=number_pk, contact_wa_id=contact)
    rows: QuerySet[Conversation] = Conversation.objects.filter(keys).order_by("pk").only("phone_number_id", "contact_wa_id", "state",
                                                                  "snoozed_until")  # fmt: skip
    if lock:
        rows = rows.select_for_update()
    return {(row.phone_number_id, row.contact_wa_id): row for row in rows}


def _as_json(value: object) -> object:
    """A field's value as the one statement's row document holds it: a time as ISO 8601 text."""
    return value.isoformat() if isinstance(value, datetime) else value


def _fallback_key(message: payloads.InboundMessage, payload: Iterable[payloads.InboundMessage]) -> str:
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


def _failures_told(failed: Sequence[payloads.Failure]) -> str:
    """The event's `error` for the items that could not be stored ("" for none), logged."""
    summary = "; ".join(f"{f['item']}: {f['reason']}" for f in failed)
    if failed:
        logger.error("webhook: %d item(s) could not be stored: %s", len(failed), summary)
    return summary
