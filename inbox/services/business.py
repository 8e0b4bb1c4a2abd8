"""What Meta tells a business beyond its messages, applied: the templates' status, category and
quality (so the reply picker offers only what Meta would send now), the number's quality and messaging
limit, the account's events (kept for managers), the contacts of the WhatsApp Business app
(smb_app_state_sync), and what each message cost (`pricing` on its statuses, counted for the price
report). Called by inbox.services while it applies a webhook, in its transaction."""

import datetime
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import connection
from django.db.models import Case, JSONField, Model, Q, QuerySet, Sum, Value, When
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce
from django.utils import timezone

from inbox.models import (
    AccountEvent,
    Contact,
    Conversation,
    ConversationPriceTally,
    Direction,
    Message,
    MessageTemplate,
    Org,
    PhoneNumber,
    PriceTally,
)
from inbox.services.inbound_rows import Numbers
from meta.payloads import FieldChange, StatusUpdate

logger = logging.getLogger("kirim.inbox")


def fields_apply(changes: Sequence[FieldChange], numbers: Numbers) -> list[tuple[FieldChange, list[int]]]:
    """Apply the followed fields' changes (meta.payloads.FOLLOWED_FIELDS) and keep each for the
    managers of the orgs whose numbers belong to its WABA. Returns [(change, [org ids])]: whom to tell."""
    if not changes:
        return []
    orgs_of_waba = _orgs_of_wabas({c.waba_id for c in changes if c.waba_id})
    told: list[tuple[FieldChange, list[int]]] = []
    for change in changes:
        number = numbers.get(change.phone_number_id)
        orgs = [number.org_id] if number else orgs_of_waba.get(change.waba_id, [])
        APPLY.get(change.field, _nothing)(change, orgs)
        if change.field not in ("history", "smb_app_state_sync"):
            AccountEvent.objects.bulk_create(
                AccountEvent(org_id=org_id, waba_id=change.waba_id[:32], field=change.field[:64],
                             event=str(change.value.get("event") or "")[:64], value=change.value,
                             received_at=change.time)
                for org_id in orgs
            )  # fmt: skip
        told.append((change, orgs))
    return told


def _orgs_of_wabas(waba_ids: set[str]) -> dict[str, list[int]]:
    orgs: defaultdict[str, list[int]] = defaultdict(list)
    for waba_id, org_id in PhoneNumber.objects.filter(waba_id__in=waba_ids).values_list("waba_id", "org_id"):
        if org_id not in orgs[waba_id]:
            orgs[waba_id].append(org_id)
    return orgs


def _nothing(change: FieldChange, orgs: list[int]) -> None:
    """History is stored as messages (inbox.services.coexistence); this field has nothing else to apply."""


def _templates(change: FieldChange, orgs: list[int]) -> QuerySet[MessageTemplate]:
    """The templates a change names, in its WABA: by Meta's id, or by name and language."""
    value = change.value
    named = Q(
        name=str(value.get("message_template_name", "")), language=str(value.get("message_template_language", ""))
    )
    if value.get("message_template_id"):
        named |= Q(meta_id=str(value["message_template_id"]))
    return MessageTemplate.objects.filter(named, org_id__in=orgs, waba_id=change.waba_id)


def _template_status(change: FieldChange, orgs: list[int]) -> None:
    """APPROVED, REJECTED, PAUSED, DISABLED, ...: the picker offers only APPROVED ones."""
    if event := str(change.value.get("event") or ""):
        _templates(change, orgs).update(status=event[:32])


def _template_category(change: FieldChange, orgs: list[int]) -> None:
    if category := str(change.value.get("new_category") or ""):
        _templates(change, orgs).update(category=category[:32])


def _template_quality(change: FieldChange, orgs: list[int]) -> None:
    if score := str(change.value.get("new_quality_score") or ""):
        _templates(change, orgs).update(quality_score=score[:16])


def _number_quality(change: FieldChange, orgs: list[int]) -> None:
    """The number Meta names by its display number, in the change's WABA: its quality event and limit."""
    digits = "".join(ch for ch in str(change.value.get("display_phone_number", "")) if ch.isdigit())
    numbers = [
        n for n in PhoneNumber.objects.filter(org_id__in=orgs, waba_id=change.waba_id)
        if "".join(ch for ch in n.display_phone_number if ch.isdigit()) == digits
    ]  # fmt: skip
    fields: dict[str, object] = {"quality_updated_at": change.time}
    if change.value.get("event"):
        fields["quality_event"] = str(change.value["event"])[:32]
    if change.value.get("current_limit"):
        fields["messaging_limit"] = str(change.value["current_limit"])[:32]
    PhoneNumber.objects.filter(pk__in=[n.pk for n in numbers]).update(**fields)


def _contacts_synced(change: FieldChange, orgs: list[int]) -> None:
    """The app's contacts: the name the business saved for each (removed: forgotten)."""
    number = PhoneNumber.objects.filter(phone_number_id=change.phone_number_id).only("pk", "org_id").first()
    if number is None:
        return
    for item in change.value.get("state_sync") or []:
        contact = item.get("contact") if isinstance(item, dict) else None
        if item.get("type") != "contact" or not isinstance(contact, dict) or not contact.get("phone_number"):
            continue
        wa_id = "".join(ch for ch in str(contact["phone_number"]) if ch.isdigit())
        name = (
            "" if item.get("action") == "remove" else str(contact.get("full_name") or contact.get("first_name") or "")
        )
        Contact.objects.update_or_create(
            phone_number_id=number.pk, contact_wa_id=wa_id, defaults={"org_id": number.org_id, "saved_name": name[:200]}
        )
        if name:  # a conversation that knows no name yet takes the saved one
            Conversation.objects.filter(phone_number_id=number.pk, contact_wa_id=wa_id, contact_name="").update(
                contact_name=name[:200]
            )


APPLY: dict[str, Callable[[FieldChange, list[int]], None]] = {
    "history": _nothing,
    "smb_app_state_sync": _contacts_synced,
    "message_template_status_update": _template_status,
    "template_category_update": _template_category,
    "message_template_quality_update": _template_quality,
    "phone_number_quality_update": _number_quality,
}


def prices_record(updates: Iterable[StatusUpdate]) -> int:
    """Keep each outbound message's `pricing`, from the first of its statuses that carries one, and
    count it in the price tallies (PriceTally, ConversationPriceTally) by the day of that status. Messages are locked in primary-key order
    (MessageQuerySet.lock_in_pk_order), so two webhooks pricing one message count it once."""
    priced = {u.wamid: u for u in updates if u.pricing}
    if not priced:
        return 0
    on_their_numbers = Q(pk__in=[])
    for update in priced.values():
        on_their_numbers |= Q(phone_number__phone_number_id=update.phone_number_id, wamid=update.wamid)
    rows = Message.objects.filter(on_their_numbers, direction=Direction.OUTBOUND, pricing__isnull=True)
    locked = rows.annotate(template_name=KT("payload__template__name")).lock_in_pk_order(
        "pk", "wamid", "org_id", "phone_number_id", "contact_wa_id", "template_name"
    )
    if not locked:
        return 0
    Message.objects.filter(pk__in=[row[0] for row in locked]).update(
        pricing=Case(*(When(pk=pk, then=Value(priced[wamid].pricing, JSONField())) for pk, wamid, *_ in locked)),
        updated_at=timezone.now(),
    )
    tallies: defaultdict[tuple[object, ...], int] = defaultdict(int)
    conversations: defaultdict[tuple[object, ...], list[int]] = defaultdict(lambda: [0, 0])
    for _, wamid, org_id, number_pk, contact, template in locked:
        pricing, day = priced[wamid].pricing or {}, priced[wamid].timestamp.date()  # priced: never empty
        billable = pricing.get("billable") is True
        tallies[org_id, day, number_pk, (template or "")[:512], str(pricing.get("category") or "")[:32],
                str(pricing.get("type") or "")[:32], billable] += 1  # fmt: skip
        counts = conversations[org_id, day, number_pk, contact]
        counts[0] += 1
        counts[1] += billable
    _add(PriceTally, "org_id, day, phone_number_id, template_name, category, pricing_type, billable",
         ("messages",), [(*key, n) for key, n in tallies.items()])  # fmt: skip
    _add(ConversationPriceTally, "org_id, day, phone_number_id, contact_wa_id", ("messages", "billable"),
         [(*key, *counts) for key, counts in conversations.items()])  # fmt: skip
    return len(locked)


def _add(model: type[Model], key: str, counts: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Add `counts` to the tally rows of `model` with these keys: one upsert statement for all.
    Each row is the key's values, then the counts'."""
    table = connection.ops.quote_name(model._meta.db_table)
    columns = [*key.split(", "), *counts]
    sql = (
        f"INSERT INTO {table} AS t ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {', '.join(f'{c} = t.{c} + excluded.{c}' for c in counts)}"
    )
    day = columns.index("day")
    params = [(*row[:day], connection.ops.adapt_datefield_value(row[day]), *row[day + 1 :]) for row in rows]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def price_report(
    org: Org,
    *,
    since: datetime.date,
    until: datetime.date,
    phone_number: PhoneNumber | None = None,
    top: int = 50,
) -> dict[str, Any]:
    """What the org's messages cost from day `since` to day `until` (dates, both included): priced and
    billable message counts in all, by Meta's pricing category and type, by template, and for the `top`
    conversations with the most billable messages. From the tallies, whatever the number of messages."""
    period: dict[str, object] = {"org": org, "day__gte": since, "day__lte": until}
    if phone_number is not None:
        period["phone_number"] = phone_number
    return {
        "since": since,
        "until": until,
        **price_summary(PriceTally.objects.filter(**period), ConversationPriceTally.objects.filter(**period), top=top),
    }


def price_summary(
    tallies: QuerySet[PriceTally], conversations: QuerySet[ConversationPriceTally], *, top: int = 50
) -> dict[str, Any]:
    """Priced and billable counts of these PriceTally rows: in all, by category and pricing type, and by
    template; and of these ConversationPriceTally rows, the `top` conversations by billable messages."""
    # Named apart from the `messages` column they sum.
    counts = {"priced": Sum("messages"), "charged": Coalesce(Sum("messages", filter=Q(billable=True)), 0)}

    def counted(row: dict[str, Any]) -> dict[str, Any]:
        """The row with its counts under their report names, 0 for none."""
        priced, charged = row.pop("priced"), row.pop("charged")
        return {**row, "messages": priced or 0, "billable": charged or 0}

    def grouped(*by: str) -> list[dict[str, Any]]:
        return [counted(row) for row in tallies.values(*by).annotate(**counts).order_by("-charged", "-priced", *by)]

    # By the number's key, not its id's text (no join), the ids looked up for the `top` rows alone.
    busiest = list(
        conversations.values("phone_number_id", "contact_wa_id")
        .annotate(priced=Sum("messages"), charged=Sum("billable"))
        .order_by("-charged", "-priced", "phone_number_id", "contact_wa_id")[:top]
    )
    number_ids = dict(
        PhoneNumber.objects.filter(pk__in={row["phone_number_id"] for row in busiest}).values_list(
            "pk", "phone_number_id"
        )
    )
    return {
        **counted(tallies.aggregate(**counts)),
        "by_category": grouped("category", "pricing_type"),
        "by_template": grouped("template_name", "category"),
        "by_conversation": [
            {
                "phone_number_id": number_ids[row["phone_number_id"]],
                "contact": row["contact_wa_id"],
                "messages": row["priced"] or 0,
                "billable": row["charged"] or 0,
            }
            for row in busiest
        ],
    }
