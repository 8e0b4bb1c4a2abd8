"""Writers of the inbox: sending messages, and what Meta's webhooks bring in. Read state is
`receipts.services.reads`'s alone."""

import uuid
from collections.abc import Iterable, Mapping
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from core.errors import IdempotencyInProgress, UpstreamError
from inbox.models import (
    CONTACT_KEY_LENGTH,
    FAILABLE,
    Direction,
    EarlyStatus,
    Message,
    PhoneNumber,
    Status,
    statuses_below,
)
from inbox.services.idempotency import Claim
from inbox.services.inbound_rows import conversations_touch
from inbox.services.statuses import early_statuses_apply
from meta import graph as meta_graph
from meta import payloads
from meta.graph import Json


def message_send(
    *, phone_number: PhoneNumber, body: Json, text: str | None = None, claim: Claim | None = None
) -> Message:
    """Store the outbound message, then hand it to Meta with no transaction open. The row is kept
    whatever happens: `accepted` with Meta's wamid; `failed` with Meta's error when Meta refused it,
    or could not be reached at all (UpstreamError raised, `meta_received` says which); `unconfirmed`
    when Meta may have it but its answer was lost (returned: its status webhook, matched by Kirim's id
    in biz_opaque_callback_data, settles it). `text` is the inbox's short text when the caller knows
    better than the body (a template, filled in).

    `claim` is the send's hold on its idempotency key (inbox.services.idempotency.Claim): taken over
    from a request that died, it answers that request's message as it stands instead of sending again."""
    idempotency_record = claim.record if claim is not None else None
    if claim is not None and claim.taken_over:
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
        contact_wa_id=str(addressee(body))[:CONTACT_KEY_LENGTH],
        contact_user_id=str(body.get("recipient") or "")[:64],
        group_id=str(body["to"])[:CONTACT_KEY_LENGTH] if body.get("recipient_type") == "group" else "",
        type=body["type"],
        text=payloads.summarize(body) if text is None else text,
        payload=body,
        claim_token=uuid.uuid4(),  # in flight until settled, or until the lease says its sender died
        claim_expires_at=lease_until,
        idempotency_record=idempotency_record,
    )
    try:
        answer = meta_graph.send_message(phone_number, payloads.with_callback_data(body, message.external_id))
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
        contact_user_id=answer.user_id or message.contact_user_id,
        message_status=answer.message_status,
    )
    conversations_touch([message])
    if early_statuses_apply(EarlyStatus.objects.filter(wamid=message.wamid)):
        message.refresh_from_db(fields=["status", "error", "updated_at"])
    return message


def cut_off_sends_unconfirm() -> int:
    """Sends whose request died during Meta's call (still pending, their lease run out): Meta may have
    them, so `unconfirmed`, for their status webhooks to settle. How many."""
    now = timezone.now()
    return Message.objects.filter(
        claim_expires_at__lte=now, direction=Direction.OUTBOUND, status=Status.PENDING
    ).update(status=Status.UNCONFIRMED, claim_token=None, claim_expires_at=None, updated_at=now)


def addressee(body: Json) -> object:
    """Whom a send names: `to` (a number, or a group's id), else `recipient` (a business-scoped user
    id), as Meta reads them: `to` first when both are given."""
    return body.get("to") or body["recipient"]


# A send's fields that settling it, or a status webhook that came first, may have changed.
SETTLED_FIELDS = (
    "status", "error", "wamid", "contact_wa_id", "contact_user_id", "message_status", "claim_token",
    "claim_expires_at", "updated_at",
)  # fmt: skip


def _settle_send(message: Message, below: Iterable[str], outcome: Mapping[str, object], **answered: object) -> Message:
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


def _outcome_of_earlier_send(message: Message) -> Message:
    """The answer to a send whose first request died (its Idempotency-Key's lease ran out): never a
    second call to Meta. Still pending, its call was cut off: Meta may have it, so `unconfirmed`."""
    if message.status == Status.PENDING:
        if message.claim_expires_at and message.claim_expires_at > timezone.now():
            raise IdempotencyInProgress()
        message = _settle_send(message, (Status.PENDING,), {"status": Status.UNCONFIRMED})
    if message.status == Status.FAILED:
        raise UpstreamError(upstream=message.error)
    return message
