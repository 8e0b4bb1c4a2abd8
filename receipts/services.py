"""The only writer of read state. The API, the admin action and `batch_read` all call these."""

import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from inbox.models import Direction, Message, Status
from kirim import meta_graph
from kirim.errors import InvalidField, NotFound

logger = logging.getLogger("kirim.receipts")


def _inbound_message(*, phone_number, wamid):
    """The inbound message `wamid` of this number; another number's or org's is simply not found."""
    # One query on the unique wamid index.
    message = Message.objects.filter(wamid=wamid).first()
    if message is None or message.phone_number_id != phone_number.pk:
        raise NotFound("No message with this message_id on this phone number.", param="message_id")
    if message.direction != Direction.INBOUND:
        raise InvalidField("message_id", "This is an outbound message: only inbound messages can be marked read.")
    return message


def message_mark_read(*, phone_number, wamid, typing=False, via, user=None, api_key=None):
    """Mark an inbound message read on WhatsApp and here, with every earlier unread inbound message of
    its conversation (WhatsApp reads those too). Returns the message, now read.

    Already read: returned at once, no call to Meta, whoever read it. Otherwise the conversation's
    unread rows up to this one stay locked across the single Meta call, so concurrent requests for
    the same message, in any process on any host, wait and then find it read: one call reaches Meta.
    If Meta fails, UpstreamError propagates, the transaction rolls back and the message stays unread.
    """
    message = _inbound_message(phone_number=phone_number, wamid=wamid)
    if message.is_read:
        return message
    with transaction.atomic():
        # Served by the partial index message_unread_inbound; the target row is always included so
        # that a waiter sees the state the winner committed.
        rows = (
            Message.objects.conversation(phone_number.pk, message.contact_wa_id)
            .filter(
                Q(pk=message.pk)
                | Q(direction=Direction.INBOUND, status=Status.RECEIVED, timestamp__lte=message.timestamp)
            )
            .lock_in_pk_order()
        )
        message = next(row for row in rows if row.pk == message.pk)
        if message.is_read:
            return message
        meta_graph.mark_read(phone_number, wamid, typing=typing)
        now = timezone.now()
        read_state = {
            "status": Status.READ,
            "read_at": now,
            "read_via": via,
            "read_by_user": user,
            "read_by_key": api_key,
        }
        # The rows are locked, so every one of them changes.
        Message.objects.filter(pk__in=[row.pk for row in rows]).update(updated_at=now, **read_state)
    for field, value in read_state.items():
        setattr(message, field, value)
    logger.info(
        "read receipt sent message=%s via=%s rows_read=%d typing=%s",
        message.external_id,
        via,
        len(rows),
        typing,
    )
    return message
