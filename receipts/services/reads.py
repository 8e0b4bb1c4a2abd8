"""The only writer of read state. The API, the admin action and `batch_read` all call these."""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core import metrics
from core.db.waiting import hold_nothing
from core.errors import InvalidField, NotFound
from inbox.models import ApiKey, Direction, Message, MessageQuerySet, Org, ReadVia, Status
from inbox.selectors import phone_number_of
from meta import graph as meta_graph
from outbox import record as outbox
from outbox.models import EventType, WebhookSubscription

logger = logging.getLogger("kirim.receipts")


# outbox.wanting() for message.read: {org_id: [subscriptions]}.
Subscribers = dict[int, list[WebhookSubscription]]


Item = TypeVar("Item")


Messages = MessageQuerySet[Message]


class _Selected(TypedDict):
    selected_unread: int  # how many of the selection a conversation's target stands for


if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    Target = WithAnnotations[Message, _Selected]


@dataclass(frozen=True)
class ReadOutcome:
    message: Message
    rows_read: int  # 0 when it was read already


def _inbound_message(*, org: Org, phone_number_id: str, wamid: str) -> Message:
    """The inbound message `wamid` of this org's number; another number's or org's is simply not found."""
    message: Message | None = Message.for_wamid(wamid)  # the hot path needs no other lookup
    if message is None or message.org_id != org.pk or message.phone_number.phone_number_id != phone_number_id:
        phone_number_of(org, phone_number_id)  # an unknown number is the 404 to give first
        raise NotFound("No message with this message_id on this phone number.", param="message_id")
    if message.direction != Direction.INBOUND:
        raise InvalidField("message_id", "This is an outbound message: only inbound messages can be marked read.")
    return message


def message_mark_read(
    *,
    org: Org,
    phone_number_id: str,
    wamid: str,
    typing: bool = False,
    via: str,
    user: User | None = None,
    api_key: ApiKey | None = None,
) -> ReadOutcome:
    """Mark an inbound message read on WhatsApp and here, with every earlier unread inbound message of
    its conversation (WhatsApp reads those too).

    Already read: returned at once, no call to Meta, whoever read it. If Meta fails, UpstreamError
    propagates and the message stays unread, so a retry tries again."""
    message = _inbound_message(org=org, phone_number_id=phone_number_id, wamid=wamid)
    return _read_up_to(
        message,
        send_receipt=lambda: meta_graph.mark_read(message.phone_number, wamid, typing=typing),
        read_state={"read_via": via, "read_by_user": user, "read_by_key": api_key},
    )


def typing_indicator_show(*, message: Message, user: User) -> ReadOutcome:
    """Show the contact a typing bubble while an agent writes to them. Meta sends it together with a
    read receipt for their message, so the conversation is read here too, as message_mark_read would;
    when it is read already, only the bubble is sent again. UpstreamError if Meta refuses."""

    def send_receipt() -> None:
        meta_graph.mark_read(message.phone_number, _wamid(message), typing=True)

    if message.is_read:
        send_receipt()
        return ReadOutcome(message, 0)
    return _read_up_to(message, send_receipt=send_receipt, read_state={"read_via": ReadVia.ADMIN, "read_by_user": user})


def _read_with(message: Message) -> Messages:
    """The rows a receipt for `message` reads: in a one-to-one chat, the earlier unread inbound
    messages of its conversation too (WhatsApp reads those with it); in a group, only that message.
    The target row is always included, so that a waiter sees the state the winner committed."""
    if message.group_id:
        return Message.objects.filter(pk=message.pk)
    conversation: Messages = Message.objects.conversation(message.phone_number_id, message.contact_wa_id)
    return conversation.filter(
        Q(pk=message.pk) | Q(direction=Direction.INBOUND, status=Status.RECEIVED, timestamp__lte=message.timestamp)
    )


def _read_up_to(
    message: Message,
    *,
    send_receipt: Callable[[], None] | None,
    read_state: dict[str, Any],
    subscribers: Subscribers | None = None,
) -> ReadOutcome:
    """Flip `message` and the earlier unread inbound messages of its conversation to read, after
    `send_receipt()` succeeds (None: flip locally, no receipt).

    Exactly one Meta call for concurrent identical requests, in any process on any host, with nothing
    held while Meta answers: a request claims the message (one conditional UPDATE setting a token and
    a lease), calls Meta with no transaction open, then settles in one short transaction. The others
    wait without a transaction for the claim's outcome and answer what it settled; a claim released
    on failure, or whose holder died (lease run out), is claimed again by one of them. `subscribers`:
    outbox.wanting() for message.read, when the caller looked them up for many messages at once."""
    if message.is_read:
        metrics.read_receipt("already_read")
        return ReadOutcome(message, 0)
    if send_receipt is None:  # nothing to wait on: no claim needed
        return _settle_read(message, read_state, with_receipt=False, subscribers=subscribers)
    waited = False
    while (token := Message.objects.claim_unread(message.pk, lease=settings.META_CLAIM_LEASE)) is None:
        waited = True
        if _wait_for_claim(message.pk):  # another request's receipt read it
            metrics.read_receipt("waited")
            message.status = Status.READ
            return ReadOutcome(message, 0)
    metrics.read_receipt("taken_over" if waited else "claimed")
    try:
        send_receipt()
    except BaseException:
        Message.objects.release_claim(message.pk, token)  # still unread: the next request tries again
        raise
    return _settle_read(message, read_state, with_receipt=True, subscribers=subscribers)


CLAIM_POLL_FIRST, CLAIM_POLL_CAP = 0.02, 0.25  # seconds between looks at another request's claim


def _wait_for_claim(pk: int) -> bool:
    """Wait, with no transaction open, until another request's claim on message `pk` settles: True
    when it was read, False when the claim was released or its lease ran out (claim it again)."""
    pause = CLAIM_POLL_FIRST
    while True:
        hold_nothing()
        time.sleep(pause)
        pause = min(CLAIM_POLL_CAP, pause * 1.5)
        status, claim_expires_at = Message.objects.filter(pk=pk).values_list("status", "claim_expires_at").get()
        if status == Status.READ:
            return True
        if claim_expires_at is None or claim_expires_at <= timezone.now():
            return False


def _settle_read(
    message: Message, read_state: dict[str, Any], *, with_receipt: bool, subscribers: Subscribers | None
) -> ReadOutcome:
    """Mark the message and the earlier unread ones of its conversation read, in one short transaction
    (no network inside) that also clears the claim."""
    now = timezone.now()
    read_state = {**read_state, "status": Status.READ, "read_at": now}
    with transaction.atomic():
        # Served by the partial index message_unread_inbound.
        locked = {
            pk: (status, wamid) for pk, status, wamid in _read_with(message).lock_in_pk_order("pk", "status", "wamid")
        }
        if locked[message.pk][0] == Status.READ:  # read by another request's receipt meanwhile
            message.status = Status.READ
            return ReadOutcome(message, 0)
        # The rows are locked, so every one of them changes.
        Message.objects.filter(pk__in=list(locked)).update(
            updated_at=now, claim_token=None, claim_expires_at=None, **read_state
        )
        _announce_read(message, [wamid for _, wamid in locked.values()], read_state, subscribers)
    for name, value in read_state.items():
        setattr(message, name, value)
    logger.info(
        "conversation read up to message=%s via=%s rows_read=%d receipt=%s",
        message.external_id, read_state["read_via"], len(locked), with_receipt,
    )  # fmt: skip
    return ReadOutcome(message, len(locked))


def _announce_read(
    message: Message, wamids: list[str], read_state: dict[str, Any], subscribers: Subscribers | None
) -> None:
    """`message.read` for the org's subscribers, in the transaction that flips the rows."""
    if subscribers is not None and message.org_id not in subscribers:
        return
    outbox.events_record(
        EventType.MESSAGE_READ,
        {
            message.org_id: {
                "phone_number_id": message.phone_number.phone_number_id,
                "contact_wa_id": message.contact_wa_id,
                "message": {"id": message.external_id, "message_id": message.wamid},
                "read_message_ids": sorted(wamids),
                "read_at": outbox.iso(read_state["read_at"]),
                "read_via": read_state["read_via"],
            }
        },
        subscribers,
    )


def _wamid(message: Message) -> str:
    """An inbound message's id at Meta, stored with it from the start (only a send waits for its own)."""
    assert message.wamid is not None, f"inbound message {message.pk} has no wamid"
    return message.wamid
